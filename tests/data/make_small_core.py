"""Writes small fixtures for six core benchmarks, each in its Hugging Face hub schema (column order included):

    tests/data/piqa/{validation,train}.jsonl            baber/piqa                          64 + 8 rows
    tests/data/winogrande/{validation,train}.jsonl      allenai/winogrande, winogrande_xl   64 + 8
    tests/data/commonsense_qa/{validation,train}.jsonl  tau/commonsense_qa                  60 + 8
    tests/data/openbookqa/{test,train}.jsonl            allenai/openbookqa, main            60 + 8
    tests/data/social_iqa/{validation,train}.jsonl      lighteval/siqa                      60 + 8
    tests/data/boolq/{validation,train}.jsonl           aps/super_glue, boolq               40 + 8

Every row is our own hand-written text (never copied from the real datasets), written below as
(question, gold answer, wrong answers); this script only places the gold among the choices and adds ids.
Seeded and deterministic: `python tests/data/make_small_core.py` rewrites the same bytes.

No tells in the scored split (validation; test for OpenBookQA): the gold's POSITION is spread exactly evenly over
the choice positions, and so is the gold's LENGTH RANK among its row's choices (rank = how many choices sort before
the gold by (character length, position); for WinoGrande the option text), so "always pick the first", "always pick
the longest" and "always pick the shortest" each score exactly 1/n_choices. A gold's rank comes from the
hand-written lengths, which are balanced by hand; where the gold ties in length with a wrong answer its rank depends
on its position, and a small search (`place`) picks positions that balance both counts at once. BoolQ's answers are
fixed ("no"/"yes"), so there the rule is 20 false and 20 true. tests/test_fixtures.py checks all of it.

Some rows carry awkward but valid text on purpose: non-ASCII (é, –, “quotes”), double spaces, trailing spaces, a
choice with a leading space, and CommonsenseQA questions with surrounding whitespace (lm-eval strips them).
"""
import json
import random
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 20240611

# ---------------------------------------------------------------------------------------------------------------
# PIQA: (goal, right solution, wrong solution)
# ---------------------------------------------------------------------------------------------------------------
PIQA_VAL = [
    ("How do I keep a cut avocado from turning brown?",
     "Squeeze a little lemon juice over the cut side and wrap it tightly in plastic film.",
     "Leave the cut side facing up on a sunny windowsill."),
    ("To loosen a tight jar lid,", "run the lid under hot water for a minute.",
     "put the jar in the freezer overnight so the lid shrinks and grips the glass even harder."),
    ("How can I dry wet sneakers quickly?",
     "Stuff them with crumpled newspaper and replace the paper every few hours until dry.",
     "Fill them with ice cubes and leave them by the door."),
    ("To make a paper airplane fly farther,", "fold the wings evenly and crease them sharply.",
     "crumple the nose into a loose ball and tape a wet tissue to the tail for extra weight."),
    ("How do you soften hard brown sugar?", "Put it in a sealed container with a slice of bread for a day.",
     "Bake it at high heat until it melts."),
    ("Clean a whiteboard that has old marker stains.", "Wipe it with rubbing alcohol.",
     "Scrub it with sandpaper and then coat it with a thin layer of cooking oil."),
    ("How to keep a bike chain from rusting",
     "Wipe it clean after wet rides and apply a few drops of chain oil.",
     "Rinse it with salt water after every ride."),
    ("To stop a door from squeaking,", "put a bit of oil on the hinges.",
     "paint the door a darker colour and always close it more slowly than before."),
    ("How can I find a small earring I dropped on the carpet?",
     "Put a thin sock over the vacuum hose and run it slowly over the carpet.",
     "Shake the carpet hard out of an open window."),
    ("To cool a hot drink faster,", "stir it with a metal spoon. ",
     "wrap the cup in a thick wool scarf and place it in a warm oven for a while."),
    ("How do I get candle wax off a tablecloth?",
     "Lay a paper towel over the wax and press it with a warm iron until the wax soaks in.",
     "Pour boiling sugar syrup over the wax."),
    ("To keep bread fresh for longer,", "freeze the slices you won't eat soon.",
     "keep the loaf unwrapped on top of the fridge next to the warm air vent."),
    ("How to unclog a slow bathroom sink",
     "Pull the hair out of the drain with a bent wire hanger, then flush it with hot water.",
     "Pour a cup of cooked rice into the drain."),
    ("To tell if an egg is still fresh,", "see whether it sinks in water.",
     "shake it next to your ear and listen for a whistling noise from the shell."),
    ("How can I stop my glasses from fogging up when I wear a mask?",
     "Pinch the top of the mask tightly around your nose so your breath goes down instead.",
     "Breathe out harder through your nose."),
    ("To make a candle burn evenly,", "trim the wick short.",
     "leave the wick very long and burn it for only a minute at a time near an open window."),
    ("How do I remove a splinter from my finger?",
     "Clean the area, then gently pull the splinter out with sterilized tweezers in the direction it went in.",
     "Push the splinter deeper with your thumb."),
    ("Keep ants out of the pet food bowl.", "Set the bowl in a shallow dish of water.",
     "Sprinkle sugar in a wide circle around the bowl so the ants have something else to eat."),
    ("How can I tell roughly which way is north without a compass?",
     "Watch where the sun rises in the morning; that is roughly east, so north is to your left.",
     "Look at which side of the road the cars drive on."),
    ("To thread a needle more easily,", "cut the thread end at an angle.",
     "soak the whole spool in warm milk overnight and then dry it with a hair dryer."),
    ("How do I make ice cubes that are clear instead of cloudy?",
     "Boil the water first, let it cool, and freeze it slowly inside an insulated cooler.",
     "Add a spoonful of flour to the water."),
    ("To get a stuck ring off a finger,", "coat the finger in soap.",
     "hold the hand in very hot water for ten minutes so the finger swells a little more."),
    ("How to sharpen a pencil without a sharpener",
     "Carefully shave the wood away from the tip with a small knife, then rub the lead on sandpaper.",
     "Rub the pencil against a soft pillow."),
    ("To keep cut flowers fresh,", "change their water daily.",
     "put them in an empty vase in direct sunlight and never trim the stems at all."),
    ("How can I stop a rug from sliding on a wooden floor?",
     "Put a rubber non-slip mat underneath the rug so it grips the floor.",
     "Polish the floor under the rug with wax."),
    ("To separate an egg yolk from the white,", "pass the yolk between the two shell halves.",
     "drop the whole egg into a pot of boiling water and stir it quickly with a whisk."),
    ("How do you keep a pot of pasta from boiling over?",
     "Lay a wooden spoon across the top of the pot and turn the heat down a little.",
     "Put a tight lid on it and turn the heat up."),
    ("To hang a picture straight,", "use a spirit level.",
     "hammer the nail in wherever it feels right and tilt your head until the frame looks level."),
    ("How can I make a cheap phone stand at home?",
     "Bend a large binder clip's wire handles outward and rest the phone in the clip.",
     "Balance the phone on a raw egg."),
    ("To clean a burnt pan,", "soak it with baking soda and warm water.",
     "heat the empty pan on high for an hour so the burnt food turns into a hard black crust."),
    ("How to peel garlic cloves quickly",
     "Put the cloves in a jar, close the lid and shake it hard for about twenty seconds.",
     "Freeze the cloves in a bowl of honey."),
    ("To keep a dog cool on a hot day,", "give it shade – and plenty of fresh water.",
     "put a thick woolly coat on the dog and take it for a long run at noon on the pavement."),
    ("How do I stop my shoelaces from coming undone all day?",
     "Tie a normal bow, then loop the bow once more through the knot before pulling it tight.",
     "Wet the laces before you tie them."),
    ("To find a leak in a bike tube,", "pump it up and dunk it in water.",
     "let all the air out and press the tube flat under a pile of heavy books for a day."),
    ("How can I keep my phone charging cable from fraying at the end?",
     "Wrap a short spring from an old ballpoint pen around the cable right where it meets the plug.",
     "Tie a tight knot in the cable near the plug."),
    ("To make rice less sticky,", "rinse it before cooking.",
     "stir it hard the whole time it cooks and add a spoonful of sugar to the pot every few minutes."),
    ("How do you get a crisp skin on baked potatoes?",
     "Rub the potatoes with oil and salt and bake them directly on the oven rack.",
     "Wrap each potato in a wet paper towel."),
    ("To store a paintbrush overnight mid-project,", "wrap the wet brush in cling film.",
     "leave it standing on its bristles in an empty jar in the sun with the lid off the paint can."),
    ("How can I remove a sticker label from a glass jar?",
     "Soak the jar in warm soapy water, then rub the leftover glue off with a little cooking oil.",
     "Hold the jar in the freezer door."),
    ("To wake up more easily in the morning,", "open the curtains right away.",
     "eat a large, heavy meal just before bed and keep the bedroom as dark as possible all morning."),
    ("How do I keep brown sugar from hardening in the cupboard?",
     "Store it in an airtight jar with a small piece of terracotta that has been soaked in water.",
     "Keep the bag open so air can move."),
    ("Stop a cutting board from slipping on the counter.", "Put a damp cloth under it.",
     "Sprinkle a handful of flour on the counter under the board and press down firmly as you chop."),
    ("How to tell if a watermelon is ripe",
     "Look for a creamy yellow patch where it rested on the ground and tap it to hear a deep, hollow sound.",
     "Pick the smallest one with a shiny green skin."),
    ("To warm up cold hands quickly,", "rub them together  briskly.",
     "hold a glass of cold water in each hand for several minutes so your fingers get used to it."),
    ("How can I keep a tablecloth from blowing away at a picnic?",
     "Clip the corners to the table edges with binder clips or clothes pegs.",
     "Soak it in water."),
    ("To smooth a wrinkled shirt without an iron,", "hang it in a steamy bathroom.",
     "crumple it into a tight ball and leave it under the mattress for a week to press it flat."),
    ("How do you measure half a cup of butter without a measuring cup?",
     "Use the markings on the butter wrapper: most sticks are marked in tablespoons and half a stick is a quarter cup.",
     "Guess by how heavy it feels in your hand."),
    ("To prevent a cake from sticking to the tin,", "grease the tin and line it with paper.",
     "pour the batter straight into a hot, dry tin and let the cake cool in it for two full days."),
    ("How can I water my plants while I'm away for a weekend?",
     "Fill a bottle with water, poke a small hole in the cap, and push it upside down into the soil.",
     "Pour a whole bucket on them."),
    ("To keep onions from making you cry,", "chill them before cutting.",
     "cut them as slowly as you can, with your face right above the board, in a small closed room."),
    ("How do I get a stripped screw out of a piece of wood?",
     "Press a wide rubber band between the screwdriver and the screw head, then turn slowly.",
     "Hit it sideways with a hammer."),
    ("To open a coconut,", " tap around its middle with a hammer.",
     "soak it in a bucket of cold water for a week until the shell becomes soft enough to peel by hand."),
    ("How to fold a fitted sheet neatly",
     "Tuck the corners into each other, lay it flat, fold the edges in and then fold it into a rectangle.",
     "Roll it up into a ball and sit on it."),
    ("To make a crème brûlée top crisp,", "caramelise sugar on it with a torch.",
     "pour cold cream over the top and put the dish back in the fridge until the cream sets firm."),
    ("How do I get rid of the smell in my trainers?",
     "Sprinkle baking soda inside them, leave it overnight and shake it out in the morning.",
     "Spray them with “fresh linen” perfume."),
    ("To carry a hot pan safely,", "use a dry oven glove.",
     "use a wet tea towel folded only once, since water stops the heat from reaching your hand."),
    ("How to keep a wooden chopping board from cracking",
     "Rub food-safe mineral oil into it every few weeks and never leave it soaking in the sink.",
     "Run it through the dishwasher daily."),
    ("To save a phone that fell in water,", "switch it off and let it dry out.",
     "plug it in right away and charge it fully so the battery heats up and dries the inside quickly."),
    ("How can I stop a zip on my jeans from sliding down?",
     "Loop a key ring through the zip pull and hook it over the button before you fasten the jeans.",
     "Pull the zip down harder."),
    ("To keep salad fresh in the fridge,", "store it with a dry paper towel.",
     "dress it fully with vinegar and salt the night before and leave it uncovered on the top shelf."),
    ("Remove a stuck lid from a nail polish bottle",
     "Wrap a rubber band around the lid for grip and twist it, or run the neck under hot water first.",
     "Shake the bottle upside down."),
    ("To make a room smell fresh,", "open the windows for a while.",
     "close every window and door, turn the heating up high and leave the kitchen bin open for a day."),
    ("How do I fix a wobbly table leg?",
     "Fold a piece of cardboard into a small wedge and slip it under the short leg.",
     "Saw off the longest leg entirely."),
    ("To pop popcorn on the stove,", "heat oil with the kernels and cover the pan.",
     "put the kernels in a cold, dry pan with a cup of water and leave it on the lowest heat overnight."),
]

PIQA_TRAIN = [
    ("How do I keep a paint can from drying out?",
     "Lay plastic wrap over the opening, then press the lid on firmly and store the can upside down.",
     "Leave the lid off so the paint can breathe."),
    ("To clean a blender quickly,", "blend warm water with a drop of soap.",
     "fill it with sand and run it at the highest speed for ten minutes."),
    ("How can I keep cookies soft?", "Store them in a tin with a slice of bread.",
     "Leave them uncovered on a tray in a warm oven."),
    ("To keep a notebook dry in the rain,", "put it in a zip-lock bag.",
     "hold it above your head like an umbrella."),
    ("How do I stop a tea bag string from falling into the cup?",
     "Wrap the string around the cup handle once.", "Cut the string off completely."),
    ("To chill a drink fast,", "wrap it in a wet towel and put it in the freezer.",
     "leave it in a sunny car."),
    ("How do you keep a hammock from sagging too low?",
     "Hang it from higher points and pull the ropes tighter.", "Sleep in it diagonally every night."),
    ("To get a splinter out painlessly,", "numb the skin with an ice cube first.",
     "squeeze it hard with your teeth."),
]

# ---------------------------------------------------------------------------------------------------------------
# WinoGrande: (sentence with one "_", right option, wrong option)
# ---------------------------------------------------------------------------------------------------------------
WINOGRANDE_VAL = [
    ("Sarah lent her book to Maria because _ had already finished reading it.", "Sarah", "Maria"),
    ("The bottle would not fit in the cup holder because the _ was too wide.", "bottle", "cup holder"),
    ("Kevin asked Brian for help with the math homework because _ was struggling with fractions.", "Kevin", "Brian"),
    ("The ice cream melted faster than the chocolate bar because the _ was left in the sun.",
     "ice cream", "chocolate bar"),
    ("Jessica could not reach the top shelf, but Amy could, because _ is much taller.", "Amy", "Jessica"),
    ("The heavy rain flooded the basement but not the attic, since the _ is below ground level.",
     "basement", "attic"),
    ("Rachel drove Natalie to the airport because _ did not have a car of her own.", "Natalie", "Rachel"),
    ("The soup was too salty but the bread was fine, so Tom ate the _.", "bread", "soup"),
    ("Lindsey always wins at chess against Monica because _ has practiced every day since she was six years old "
     "and knows most of the openings by heart.", "Lindsey", "Monica"),
    ("The laptop stayed cool but the phone got hot, because the _ was running a heavy game.", "phone", "laptop"),
    ("Derrick paid for dinner instead of Jason because _ had forgotten his wallet at home.", "Jason", "Derrick"),
    ("The plant on the windowsill grew faster than the one in the hallway because the _ got more light.",
     "windowsill", "hallway"),
    ("Emily hired Patricia to paint the house because _ had years of experience with ladders and brushes.",
     "Patricia", "Emily"),
    ("The knife cut through the tomato easily but not the squash, because the _ was so soft.", "tomato", "squash"),
    ("Megan's cat was always hungry while Eleanor's cat was not, so _ bought a bigger bag of food.", 
     "Megan", "Eleanor"),
    ("The shoes were too tight but the socks fit fine, so Carlos returned the _.", "shoes", "socks"),
    ("Victoria taught Elena how to swim because _ had grown up near the sea and spent every summer on the beach "
     "with her cousins.", "Victoria", "Elena"),
    ("The glass broke when it hit the tile floor but the plastic cup did not, because the _ is fragile.",
     "glass", "plastic cup"),
    ("Nick was always on time, unlike Adam, so _ was annoyed at having to wait again.", "Nick", "Adam"),
    ("The wool sweater kept him warmer than the cotton shirt, because the _ is a thicker fabric.",
     "wool sweater", "cotton shirt"),
    ("Hannah failed the driving test while Juliette passed, so _ had to book another test.", "Hannah", "Juliette"),
    ("The bakery sold out of bread before the café did because the _ had baked fewer loaves that morning.",
     "bakery", "café"),
    ("Laura preferred tea while Betty liked coffee, so at breakfast _ put the kettle on first.", "Laura", "Betty"),
    ("The car stopped at the light but the bicycle kept going, because the _ rider did not see it change.",
     "bicycle", "car"),
    ("Samuel's garden had more tomatoes than Ryan's because _ watered his plants every single evening, even when "
     "it rained.", "Samuel", "Ryan"),
    ("The movie was long but the book was longer, so Ana finished the _ first.", "movie", "book"),
    ("Maria could not open the jar, so she handed it to Leslie, because _ has stronger hands.", "Leslie", "Maria"),
    ("The old bridge was closed while the new bridge stayed open, because the _ had cracks in its supports.",
     "old bridge", "new bridge"),
    ("Christine cooked dinner for Angela because _ had just come home from a long shift at the hospital.",
     "Angela", "Christine"),
    ("The blanket was warm but the sheet was thin, so in winter Jack slept under the _.", "blanket", "sheet"),
    ("Ian lost the race to Felix because _ had trained much harder all winter.", "Felix", "Ian"),
    ("The lamp lit the room better than the candle because the _ is far brighter.", "lamp", "candle"),
    ("Rebecca asked Cynthia to proofread her essay because _ is known as an excellent writer.", "Cynthia", "Rebecca"),
    ("The mug was full but the glass was empty, so Paul poured the juice into the _.", "glass", "mug"),
    ("Logan's dog barked all night while Kendall's dog slept, so _ got a complaint from the neighbours.",
     "Logan", "Kendall"),
    ("The hiking boots lasted longer than the sandals because the _ were made of thick leather.",
     "hiking boots", "sandals"),
    ("Monica apologized to Tatiana because _ had accidentally broken her favourite vase.", "Monica", "Tatiana"),
    ("The dog chased the cat up the tree, and the _ barked at the bottom for an hour.", "dog", "cat"),
    ("Joel was nervous before the speech but Matthew was calm, so _ practiced it ten more times.", "Joel", "Matthew"),
    ("The oven was hotter than the toaster, so the pizza cooked faster in the _.", "oven", "toaster"),
    ("Kayla borrowed a dress from Leanne because _ had nothing to wear to the wedding on Saturday.", "Kayla", "Leanne"),
    ("During the power cut the stairs were quicker than the lift, because the _ was not working.", "lift", "stairs"),
    ("Dennis had to wear glasses but Eric did not, because _ had perfect eyesight.", "Eric", "Dennis"),
    ("The river was too deep to cross on foot, but the stream was shallow, so they waded across the _.",
     "stream", "river"),
    ("Olivia's essay got a higher grade than Grace's because _ had spent the whole week checking her sources and "
     "rewriting the weak paragraphs.", "Olivia", "Grace"),
    ("The coat kept out the wind but the jacket did not, because the _ was too thin.", "jacket", "coat"),
    ("Aaron fixed Steven's bike because _ did not know how to change a tyre.", "Steven", "Aaron"),
    ("The kettle boiled faster than the saucepan because the _ held less water.", "kettle", "saucepan"),
    ("Rosalind wanted to learn the guitar from Kate because _ had played in a band for years.", "Kate", "Rosalind"),
    ("The map was easier to use than the app because the _ kept freezing on her phone.", "app", "map"),
    ("Benjamin had a cold, so Gregory brought him soup, since _ was stuck in bed.", "Benjamin", "Gregory"),
    ("The tent stayed dry but the sleeping bag got wet, because the _ had been left outside.",
     "sleeping bag", "tent"),
    ("Felicia always forgot birthdays, but Carmen never did, so _ kept a calendar of them for both of them.",
     "Carmen", "Felicia"),
    ("The piano was too heavy for the narrow stairs, so they left the _ downstairs.", "piano", "stairs"),
    ("Lucas beat Oscar at tennis because _ had a sprained wrist.", "Oscar", "Lucas"),
    ("The milk went sour before the cheese did, because the _ was already past its date.", "milk", "cheese"),
    ("Tiffany loaned money to Brenda because _ needed to pay her rent on time.", "Brenda", "Tiffany"),
    ("The pen ran out of ink so Mark wrote the note in pencil, because the _ still worked.", "pencil", "pen"),
    ("Nathan was afraid of heights, but Ethan was not, so _ climbed the ladder to fix the roof while the other "
     "held it steady below.", "Ethan", "Nathan"),
    ("The bus was late but the train was on time, so Sofia arrived early because she took the _.", "train", "bus"),
    ("Katrina taught the yoga class and Sharon took it, so _ rolled out her mat at the back of the room.",
     "Sharon", "Katrina"),
    ("The towel was soaked but the napkin was dry, so she wiped the table with the _.", "napkin", "towel"),
    ("Justin ordered the spicy curry and Wesley the mild one, because _ cannot handle hot food.", "Wesley", "Justin"),
    ("The window was open but the door was shut, so the cat escaped through the _.", "window", "door"),
]

WINOGRANDE_TRAIN = [
    ("Helen sent a thank-you card to Joan because _ had helped her move house.", "Joan", "Helen"),
    ("The umbrella kept him dry but the hat did not, because the _ was too small.", "hat", "umbrella"),
    ("Marcus asked Philip for directions because _ had lived in the city for years.", "Philip", "Marcus"),
    ("The sandwich was gone before the salad because the _ was tastier.", "sandwich", "salad"),
    ("Irene won the spelling bee over Diane because _ had studied the word list every night.", "Irene", "Diane"),
    ("The stove was still hot but the fridge was cold, so Ben burned his hand on the _.", "stove", "fridge"),
    ("Carla could not sleep while Nina snored, because _ was such a light sleeper.", "Carla", "Nina"),
    ("The boat sank but the raft floated, because the _ had a hole in it.", "boat", "raft"),
]

# ---------------------------------------------------------------------------------------------------------------
# CommonsenseQA: (question, question_concept, right choice, [4 wrong choices])
# ---------------------------------------------------------------------------------------------------------------
CSQA_VAL = [
    ("Where would you keep a carton of milk so it stays cold?", "milk", "fridge",
     ["kitchen table", "grocery bag", "cupboard shelf", "windowsill"]),
    ("What do people usually do when they feel very tired at night?", "tired", "sleep",
     ["go jogging", "drink coffee", "start a project", "clean the garage"]),
    ("Where is a good place to hang a wet towel?", "towel", "towel rail",
     ["inside a drawer", "under the bed", "kitchen oven", "jewellery box"]),
    ("If you want to learn about the past, what could you read?", "past", "history",
     ["weather forecast", "shopping list", "bus timetable", "horoscope"]),
    ("What happens to ice when you leave it in a warm room?", "ice", "melts",
     ["gets colder", "turns into stone", "grows larger", "becomes glass"]),
    (" Where would you find a lot of books that you can borrow for free?", "books", "library",
     ["shoe store", "supermarket", "petrol station", "swimming pool"]),
    ("What do you need to do before you can drive a car legally?", "drive", "get a licence",
     ["paint the car red", "move to the countryside", "learn to play chess", "own a large garage"]),
    ("A person who is cold will most likely put on what?", "cold", "coat",
     ["sunglasses", "flip-flops", "swimming trunks", "paper crown"]),
    ("Where do most people keep their toothbrush?", "toothbrush", "bathroom",
     ["living room", "garden shed", "car glovebox", "office desk drawer"]),
    ("What might a child do when they get a present?", "present", "smile",
     ["fall asleep", "feel angry", "hide from it", "throw it away"]),
    ("Where would you go to buy fresh bread early in the morning – before work?", "bread", "bakery",
     ["post office", "dentist's office", "hardware store", "movie theater"]),
    ("What do you use to cut paper?  ", "paper", "scissors",
     ["a wooden spoon", "a paintbrush", "a pillowcase", "a garden hose"]),
    ("Where would you put dirty clothes before washing them?", "clothes", "hamper",
     ["sink", "kitchen drawer", "bookcase", "fish tank"]),
    ("What does a farmer use to plough a field?", "field", "tractor",
     ["boat", "helicopter", "skateboard", "sewing machine"]),
    ("Where do fish live?", "fish", "water", ["sky", "desert", "mountain top", "rooftop"]),
    ("What do you feel when you lose something important?", "lose", "upset",
     ["joy", "hungry", "sleepy", "excited"]),
    ("Where would you most likely see a giraffe in a city?", "giraffe", "the zoo",
     ["park", "post office", "shopping mall", "train station"]),
    ("What do people use to keep rain off their heads?", "rain", "umbrella",
     ["fan", "newspaper rack", "ceiling light", "picture frame"]),
    ("Where might you put a letter after writing it?", "letter", "envelope",
     ["oven", "fish bowl", "washing machine", "flower pot"]),
    ("What is a common result of exercising a lot?", "exercising", "getting fit",
     ["flying", "becoming taller than a tree", "forgetting how to read", "losing your voice"]),
    ("If you are thirsty, what should you do?", "thirsty", "drink water",
     ["sleep", "eat salty crackers", "run a marathon", "sit in the sun"]),
    ("Where would you store winter coats during the summer?", "coats", "closet",
     ["oven", "bathtub", "refrigerator", "mailbox"]),
    ("What could a person do to relax after a stressful day?", "relax", "take a bath",
     ["shout", "do their taxes", "run for the bus", "paint the ceiling"]),
    ("  Where is someone likely to stand while waiting for a train?", "train", "platform",
     ["roof", "beach towel", "swimming pool", "checkout lane"]),
    ("What do you call the meal eaten in the middle of the day?", "meal", "lunch",
     ["tea", "soup", "dinner party", "midnight snack"]),
    ("Where would you see people wearing helmets and riding bikes in a race?", "race", "cycling track",
     ["church", "library", "hospital waiting room", "underground car park"]),
    ("What does a baby do when it is hungry?", "baby", "cries loudly",
     ["sings", "reads", "writes a letter", "drives to the shop"]),
    ("Where could you buy a hammer and some nails?", "hammer", "hardware store",
     ["bakery", "pharmacy", "ice cream parlour", "children's bookshop"]),
    ("What are you likely to feel after winning a race?", "winning", "proud",
     ["sad", "ill", "ashamed of yourself", "confused and lost"]),
    ("Where does a pilot work?", "pilot", "airplane", ["farm", "forest", "submarine", "coal mine"]),
    ("What would you use to see something very far away?", "far away", "telescope",
     ["mirror", "spoon", "magnifying glass", "pair of earmuffs"]),
    ("If a plant doesn't get any water, what will it do?", "plant", "dry out and die",
     ["grow", "bloom", "produce more flowers", "turn a brighter green"]),
    ("Where do people usually go to watch a new film?", "film", "cinema",
     ["bank", "gym", "car wash", "dentist"]),
    ("What do people do with a map?", "map", "find their way",
     ["eat it", "wear it", "plant it in the garden", "use it as an umbrella"]),
    ("Where would you see many boats tied up?", "boats", "harbour",
     ["desert", "attic", "parking garage", "airport lounge"]),
    ("What happens to bread if you leave it out for a week?", "bread", "it goes stale",
     ["it grows", "it melts", "it turns into cake", "it becomes fresher"]),
    ("What kind of room has a bed, a wardrobe and a bedside lamp?", "bed", "bedroom",
     ["hall", "garage", "porch", "laundry room"]),
    ("Where would a doctor most likely work?", "doctor", "hospital", ["farm", "bakery", "zoo", "racing track"]),
    ("What might you feel if you hear a strange noise at night?", "noise", "scared",
     ["calm", "full", "tall", "extremely hungry"]),
    ("Where do you keep money safe at home?", "money", "a safe", ["a bin", "a tap", "a pot", "the front garden"]),
    ("What do students do in a classroom?", "students", "learn", ["swim", "nap", "cook", "repair cars all day"]),
    ("Where would you hear a band playing loud music at night?", "band", "concert",
     ["school", "bank", "church", "public library reading room"]),
    ("What do you wear on your feet when you go running?", "running", "trainers",
     ["gloves", "a tie", "a scarf", "a pair of mittens"]),
    ("Where is a cow most likely to be found?", "cow", "pasture", ["mall", "office", "beach", "underground station"]),
    ("What would someone use to write on a blackboard?", "blackboard", "chalk",
     ["ink", "glue", "soap", "permanent marker"]),
    ("Where would you throw a coin to make a wish?", "wish", "fountain",
     ["purse", "wallet", "sofa", "vending machine"]),
    ("What does a dog do when it is happy?", "dog", "wags its tail",
     ["meows", "sulks", "hisses", "climbs up the chimney"]),
    ("Where can you usually find sand and waves?", "sand", "beach", ["loft", "city", "shed", "cathedral"]),
    ("Where would you go to get your teeth cleaned?", "teeth", "dentist's office",
     ["bakery", "gym", "barber", "car wash"]),
    ("What do people do at a wedding reception?", "wedding", "celebrate together",
     ["sleep", "study", "do taxes", "mow lawns"]),
    ("Where do you usually wait to see a doctor?", "doctor", "waiting room",
     ["garage", "kitchen", "attic", "bus roof"]),
    ("What do people use to carry groceries home?", "groceries", "shopping bags",
     ["hats", "socks", "teacups", "envelopes"]),
    ("If you break your leg, where will you probably go?", "break", "emergency room",
     ["café", "bakery", "library", "ski slope"]),
    ("What do you need to bake a “proper” cake?", "cake", "flour and eggs",
     ["soap", "sand", "gravel", "fresh paint"]),
    ("Where would you put a plant so it gets lots of sunlight?", "sunlight", "sunny windowsill",
     ["cellar", "closet", "drawer", "dark garage"]),
    ("What is a common reason to go to the post office?", "post office", "to send a parcel",
     ["to swim", "to bake", "to buy shoes", "to see a film"]),
    ("What do people often do when they meet someone new?", "meet", "shake hands",
     ["yawn", "run away", "frown", "hide"]),
    ("Where does water come out of in a kitchen?", "water", "the faucet", ["oven", "toaster", "fridge", "bread bin"]),
    ("What might a student feel before a big exam?", "exam", "nervousness", ["joy", "hunger", "boredom", "sleepy"]),
    ("Where would you find a wide variety of animals living in the wild?", "animals", "national park",
     ["attic", "office", "parking lot", "bathroom"]),
]

CSQA_TRAIN = [
    ("Where would you keep your shoes when you come inside?", "shoes", "shoe rack",
     ["bathtub", "microwave", "bookshelf", "freezer"]),
    ("What do you do with a key?", "key", "open a door", ["eat it", "wear it", "plant it", "paint it"]),
    ("Where do bees make honey?", "bees", "hive", ["sock", "cave", "garage", "river"]),
    ("What do people do when they hear a joke they like?", "joke", "laugh", ["cry", "sneeze", "leave", "sleep"]),
    ("Where would you find a sink, a stove and a fridge?", "stove", "kitchen",
     ["bedroom", "garden", "garage", "hallway"]),
    ("What might you use to dry your hair?", "hair", "towel", ["spoon", "stapler", "pillow", "candle"]),
    ("Where do you go to catch a plane?", "plane", "airport", ["harbour", "stadium", "farm", "museum"]),
    ("What happens when you heat water for a long time?", "heat", "it boils",
     ["it freezes", "it shrinks", "it turns blue", "it glows"]),
]

# ---------------------------------------------------------------------------------------------------------------
# OpenBookQA: (question_stem, right choice, [3 wrong choices])
# ---------------------------------------------------------------------------------------------------------------
OBQA_TEST = [
    ("Plants need sunlight in order to", "grow", ["stay the same size", "move across a field", "turn into rocks"]),
    ("Which of these conducts electricity best?", "copper",
     ["a rubber glove", "a wooden spoon", "a plastic straw"]),
    ("When water freezes it becomes", "ice", ["water vapour", "salt crystals", "liquid metal"]),
    ("A magnet will attract", "iron nails", ["glass marbles", "wooden building blocks", "paper towels"]),
    ("An example of a renewable resource is", "wind", ["coal from a mine", "natural gas", "crude oil"]),
    ("Which animal is most likely to hibernate in winter?", "a bear",
     ["a house cat", "a tropical parrot", "a goldfish in a bowl"]),
    ("The moon is visible at night because it", "reflects light",
     ["makes its own light", "is covered in mirrors", "is hotter than the sun"]),
    ("Sound travels fastest through", "steel", ["empty space", "the air in a room", "a vacuum chamber"]),
    ("Which is a source of food for a rabbit?", "clover", ["small pebbles", "plastic bottles", "metal screws"]),
    ("Evaporation happens faster when water is", "heated",
     ["kept in a freezer", "covered tightly", "stored in the dark"]),
    ("A seed needs which of these to sprout?", "water",
     ["a loud noise", "total darkness and sand", "a strong magnet"]),
    ("An animal that eats only plants is called", "an herbivore",
     ["a meat-eating predator", "a decomposer of dead logs", "a carnivorous hunter"]),
    ("The Earth takes about one year to", "orbit the sun",
     ["spin once on its axis", "travel across the galaxy", "cool down after summer"]),
    ("Which object is made of a natural material?", "a wool scarf",
     ["a plastic shopping bag", "a nylon fishing line", "a polyester jacket"]),
    ("Runoff from heavy rain can cause", "erosion", ["stronger tree roots", "cleaner rivers", "taller mountains"]),
    ("A thermometer is used to measure", "temperature", ["mass", "the speed of wind", "how loud a sound is"]),
    ("Which of these would best keep a drink cold?", "a foam cooler",
     ["a sieve", "an open metal tray", "a thin paper bag in the sun"]),
    ("Bees help flowers by", "carrying pollen", ["stinging", "blocking all the sunlight", "pulling out their roots"]),
    ("Deserts usually have", "little rainfall", ["snow", "many large lakes and rivers", "thick rainforests"]),
    ("If a plant is placed in a dark closet for weeks, it will most likely", "turn pale and weak",
     ["bloom", "grow greener than before", "produce more fruit than usual"]),
    ("A good conductor of heat is", "a metal pot", ["air", "a thick wool blanket", "a styrofoam cup"]),
    ("Which is an inherited trait?", "eye colour", ["a scar", "knowing how to ride a bike", "a tattoo on the arm"]),
    ("The phases of the moon are caused by", "the moon's orbit around Earth",
     ["clouds", "the sun turning off and on each night", "changes in the moon's size over a month"]),
    ("An owl hunts mostly at", "night", ["noon", "midday in bright light", "lunchtime on sunny days"]),
    ("Which of these is a mixture?", "a salad", ["gold", "pure oxygen gas", "a single crystal of salt"]),
    ("When a car brakes quickly, the passengers tend to", "keep moving forward",
     ["rise", "slide backward into their seats", "become lighter than air"]),
    ("A compass works because Earth has", "a magnetic field",
     ["gravity", "an atmosphere full of clouds", "oceans that move with the tides"]),
    ("Which of these is a producer in a food chain?", "grass", ["owl", "a hungry fox", "a snake in the grass"]),
    ("Recycling aluminum cans helps to", "conserve natural resources",
     ["pollute", "increase the amount of landfill waste", "use up more mined ore each year"]),
    ("The main gas that plants take in from the air is", "carbon dioxide",
     ["helium", "argon from the soil", "steam from the ocean"]),
    ("Which tool would best help a student observe tiny cells?", "a microscope",
     ["a ruler", "a scale", "a pair of binoculars"]),
    ("A rock that is broken down by wind and water over time goes through", "weathering",
     ["melting", "growth", "photosynthesis"]),
    ("To stay warm in cold water, a whale has a thick layer of", "blubber", ["fur", "scales", "feathers"]),
    ("Which of these takes the longest time to complete?", "one year", ["one day", "a week", "a single month"]),
    ("Salt dissolves fastest in", "hot water", ["ice", "cold oil", "frozen water"]),
    ("Animals that migrate in winter usually do so to", "find food", ["rest", "get wet", "find colder weather"]),
    ("The transfer of heat from the sun to the Earth happens by", "radiation",
     ["boiling", "friction", "conduction through the vacuum"]),
    ("A student wants to find the mass of a rock.  She should use", "a balance",
     ["a ruler", "a clock", "a thermometer"]),
    ("Which of these describes a physical change?", "ice cream melting",
     ["wood burning", "iron rusting", "a cake baking in the oven"]),
    ("Rain, snow and hail are all forms of", "precipitation", ["erosion", "lava", "condensation on windows"]),
    ("A light bulb changes electrical energy into", "light and heat",
     ["sound", "motion", "chemical energy in food"]),
    ("Which part of a plant takes in water from the soil?", "the roots", ["the bud", "a leaf", "the flower petals"]),
    ("The best way to slow down soil erosion on a hill is to", "plant trees",
     ["dig it", "pave it", "remove all the plants"]),
    ("Which of these is the hardest?", "a diamond", ["chalk", "talc", "a lump of modelling clay"]),
    ("Frogs begin their lives as", "tadpoles", ["birds", "snakes", "small lizards"]),
    ("A person needs a coat on a winter day because the coat", "traps body heat",
     ["is heavy", "is blue", "makes heat"]),
    ("Which would most likely cause a forest to shrink?", "a long drought", ["rain", "owls", "new seeds"]),
    ("The Earth's surface is mostly covered by", "ocean water", ["ice", "sand", "forests"]),
    ("Which is an example of a chemical change?", "a nail rusting",
     ["ice melting", "paper tearing", "wax softening"]),
    ("Shade from trees in summer helps to", "keep houses cooler", ["heat roads", "dry rivers", "melt snow"]),
    ("A kitten looks like its mother because of", "inherited traits", ["food", "the weather", "its toys"]),
    ("Which of these animals has a backbone?", "a house sparrow", ["a worm", "a snail", "a jellyfish"]),
    ("When you push a toy car harder, it", "moves faster", ["stops", "shrinks", "turns red "]),
    ("Which source of energy is used by solar panels?", "sunlight", ["coal", "wind", "oil"]),
    ("The water cycle is driven mostly by", "energy from the sun", ["the moon", "volcanoes", "tree roots"]),
    ("An animal's fur becoming thicker in autumn helps it", "survive the winter",
     ["swim", "hide in sand", "eat more grass"]),
    ("Which is most likely to float in water?", "a wooden block", ["a rock", "a coin", "an iron nail"]),
    ("A cactus stores water in its", "thick stem", ["spines", "flowers", "seeds"]),
    ("Mixing baking soda and vinegar produces", "bubbles of gas", ["sand", "ice", "solid metal"]),
    ("Day and night are caused by", "Earth spinning on its axis", ["clouds", "the moon", "Earth's orbit"]),
]

OBQA_TRAIN = [
    ("Heat moves from a hot cup of cocoa to", "the cooler air around it",
     ["the table's shadow", "the moon", "a colder planet"]),
    ("Which of these is a liquid at room temperature?", "milk", ["a brick", "steam", "a pebble"]),
    ("A plant's leaves are mostly green because of", "chlorophyll", ["sand", "salt water", "the moon"]),
    ("The force that pulls objects toward Earth is", "gravity", ["magnetism", "friction", "sound"]),
    ("Which is a good way to save water?", "fix dripping taps",
     ["leave taps running", "water lawns at noon", "take longer showers"]),
    ("An example of a mammal is", "a dolphin", ["a shark", "a trout", "a lizard"]),
    ("Ice melts faster on", "a dark metal tray in the sun", ["a shaded wooden shelf", "a freezer shelf", "a snowbank"]),
    ("Earthworms help soil by", "loosening it", ["freezing it", "drying it out", "turning it to stone"]),
]

# ---------------------------------------------------------------------------------------------------------------
# Social IQa: (context, question, right answer, [2 wrong answers])
# ---------------------------------------------------------------------------------------------------------------
SIQA_VAL = [
    ("Alex spilled coffee all over Jordan's new laptop during the meeting.", "How would Alex feel afterwards?",
     "embarrassed", ["proud of what they had done", "relaxed and well rested"]),
    ("Casey studied every night for two weeks before the final exam.", "Why did Casey do this?",
     "to pass the exam", ["to forget everything they learned", "because they wanted to fail the class"]),
    ("Riley held the door open for an elderly man carrying heavy bags.", "How would Others feel as a result?",
     "grateful", ["annoyed at Riley for helping", "jealous of the heavy bags"]),
    ("Taylor forgot to bring lunch, so Quinn shared a sandwich with them.", "What will Taylor want to do next?",
     "thank Quinn", ["throw the sandwich on the floor", "ask Quinn to leave the table"]),
    ("Sydney found a wallet on the sidewalk and turned it in at the police station.",
     "How would you describe Sydney?", "honest", ["greedy and selfish with money", "careless about other people"]),
    ("Kai practiced the piano for hours every day for a year.", "What will happen to Kai?", "get better",
     ["forget how to read music", "lose interest in all music forever"]),
    ("Remy moved to a new city and didn't know anyone there yet.", "How would Remy feel?", "lonely",
     ["surrounded by old friends", "bored of their many visitors"]),
    ("Cameron stayed up all night finishing a big project for work.", "How would Cameron feel afterwards?",
     "exhausted", ["full of energy and well rested", "ready for a long run"]),
    ("Austin cooked a big dinner for the whole family on Sunday.", "What does Austin need to do before this?",
     "buy groceries", ["wash the dishes from the dinner", "eat all the leftovers the next day"]),
    ("Skylar lost the championship game after months of training.", "How would Skylar feel afterwards?",
     "disappointed", ["thrilled about losing the game", "happy that the training was wasted"]),
    ("Bailey saw a little kid crying alone in the mall.", "What will Bailey want to do next?", "help the child",
     ["ignore the child and keep shopping", "laugh at the child loudly"]),
    ("Jesse borrowed Tracy's car and returned it with a full tank of gas.", "How would Tracy feel as a result?",
     "pleased", ["angry about the full tank", "worried about the empty tank"]),
    ("Robin told a funny joke at the party and everyone laughed.", "How would Others feel as a result?", "amused",
     ["offended by the silence", "bored and ready to go home"]),
    ("Lee was late to work because the bus broke down.", "What will Lee want to do next?", "apologize",
     ["ask for a promotion right away", "go back home and take a nap"]),
    ("Aubrey adopted a puppy from the animal shelter.", "What will Aubrey want to do next?", "play with it",
     ["return it to the shelter at once", "forget to give it any food"]),
    ("Carson planted tomatoes in the backyard in the spring.", "What will Carson want to do next?", "water them",
     ["dig them all up the next day", "pour salt over the garden bed"]),
    ("Kendall won the school spelling bee in front of the whole class.", "How would Kendall feel?", "proud",
     ["ashamed of winning the contest", "upset that they spelled words right"]),
    ("Sasha gave a long speech at her best friend’s wedding.", "Why did Sasha do this?", "to honor her friend",
     ["to make her friend look bad", "because she wanted to ruin the day"]),
    ("Ash cleaned the whole house before the guests arrived.", "Why did Ash do this?", "to impress guests",
     ["to make the house even messier", "because the guests asked for dust"]),
    ("Jordan broke their leg while skiing on the mountain.", "What will Jordan need to do?", "see a doctor",
     ["go skiing again tomorrow morning", "run a race later in the week"]),
    ("Alex invited all of the neighbours over for a barbecue.", "What will Others want to do next?",
     "bring some food", ["leave", "burn down Alex's house and garden"]),
    ("Casey spent the whole afternoon helping Riley move boxes into the new apartment.",
     "How would Riley feel as a result?", "thankful for the help",
     ["angry", "upset that the boxes were moved so quickly"]),
    ("Taylor got a perfect score on the math test.", "How would Taylor feel afterwards?", "very happy",
     ["sad", "worried about failing the test"]),
    ("Quinn forgot their umbrella and walked home in the pouring rain.", "What will happen to Quinn?",
     "get soaking wet", ["stay dry", "get a sunburn on the walk home"]),
    ("Sydney lent their favourite book to Kai for the summer.", "What will Kai want to do next?", "read the book",
     ["burn it", "sell it to a shop without asking Sydney"]),
    ("Remy noticed that the elderly neighbour's lawn was overgrown and mowed it for free.",
     "How would you describe Remy?", "kind and helpful", ["lazy", "someone who dislikes all neighbours"]),
    ("Cameron ate a whole pizza by themself late at night.", "How would Cameron feel afterwards?", "very full",
     ["hungry", "ready to eat another whole pizza"]),
    ("Austin was chosen to be the captain of the football team.", "How would Austin feel?", "honored",
     ["sad", "embarrassed to have been picked"]),
    ("Skylar accidentally locked the keys inside the car at the grocery store.",
     "What will Skylar want to do next?", "call a locksmith", ["drive", "walk into the store and buy more milk"]),
    ("Bailey spent all of their savings on a trip to Japan.", "What will Bailey need to do next?",
     "save money again", ["buy a boat", "spend even more money on another trip right away"]),
    ("Jesse heard a strange noise downstairs in the middle of the night.", "How would Jesse feel?", "frightened",
     ["calm", "excited to have a visitor at that hour"]),
    ("Tracy baked cookies for the new family on the street.", "Why did Tracy do this?", "to welcome them",
     ["to annoy", "because she wanted them to move away soon"]),
    ("Robin missed the last train home after the concert.", "What will Robin need to do?", "find another ride",
     ["sleep", "buy a ticket for the train that already left"]),
    ("Lee painted a picture of the lake and hung it in the hallway.", "Why did Lee do this?",
     "to decorate the house", ["to hide", "because they hated the picture and the lake"]),
    ("Aubrey told Carson a secret and Carson told everyone at school.", "How would Aubrey feel as a result?",
     "betrayed", ["glad", "thankful that Carson shared it with all"]),
    ("Kendall trained for months and finished the city marathon.", "How would Kendall feel afterwards?",
     "tired but proud", ["bored", "ashamed of finishing the race at all"]),
    ("Sasha saw that Ash had dropped their scarf on the train platform.", "What will Sasha want to do next?",
     "give the scarf back", ["keep it", "throw the scarf onto the train tracks below"]),
    ("Ash had a job interview at a big company on Monday morning.", "What does Ash need to do before this?",
     "prepare for it", ["sleep in", "decide never to go to any job interview again"]),
    ("Jordan shouted at the waiter because the food was cold.", "How would Others feel as a result?",
     "uncomfortable", ["cheerful", "proud of how Jordan treated the waiter"]),
    ("Alex fixed the broken fence in the backyard over the weekend.", "What will Alex want to do next?",
     "rest for a bit", ["break it", "tell the neighbours the fence is still broken"]),
    ("Casey forgot Riley’s birthday for the second year in a row.", "How would Riley feel as a result?",
     "hurt and forgotten", ["delighted", "very proud"]),
    ("Taylor saved money for months to buy a new bike.", "Why did Taylor do this?",
     "to have their own bike to ride", ["to lose it", "to give up"]),
    ("Quinn answered the phone and heard their grandmother's voice.", "How would Quinn feel?",
     "happy to hear from her", ["annoyed", "terrified"]),
    ("Sydney tripped on the stairs and dropped all of her books.", "What will Sydney want to do next?",
     "pick the books up again", ["run a mile", "buy stairs"]),
    ("Kai brought an umbrella because the forecast said it would rain.", "How would you describe Kai?",
     "someone who plans ahead", ["careless", "forgetful"]),
    ("Remy won a free dinner for two at a fancy restaurant.", "Who will Remy most likely invite?",
     "a close friend or partner", ["nobody", "a stranger"]),
    ("Cameron spilled juice on the carpet at a friend's house.", "What will Cameron want to do next?",
     "help clean up the stain", ["leave fast", "spill more"]),
    ("Austin helped the new student find her way around the school.", "How would the new student feel?",
     "welcome and less nervous", ["ignored", "insulted"]),
    ("Skylar couldn't sleep because the neighbours were having a loud party.", "What will Skylar want to do next?",
     "ask them to turn it down", ["join a gym", "go jogging"]),
    ("Bailey took the dog for a long walk in the park.", "Why did Bailey do this?",
     "to give the dog some exercise", ["to sell it", "to get wet"]),
    ("Jesse studied French for a trip to Paris next summer.", "What will Jesse want to do in Paris?",
     "speak French with locals", ["stay inside", "speak Dutch"]),
    ("Tracy noticed her friend looked upset at lunch.", "What will Tracy want to do next?", "ask what is wrong",
     ["eat fast", "walk off"]),
    ("Robin finished painting the bedroom walls a bright yellow.", "How would Robin feel afterwards?",
     "satisfied with the work", ["sad", "cold"]),
    ("Lee lost the keys to the apartment on the way home.", "What will Lee need to do?",
     "call the landlord for help", ["nap", "cook"]),
    ("Aubrey was the first one to arrive at the office every morning.", "How would you describe Aubrey?",
     "punctual and hardworking", ["lazy", "always late"]),
    ("Carson's little brother broke Carson's favourite toy on purpose.", "How would Carson feel?",
     "angry with his brother", ["grateful", "cheerful"]),
    ("Kendall volunteered at the food bank every Saturday.", "Why did Kendall do this?", "to help people in need",
     ["to get rich", "to eat food"]),
    ("Sasha forgot to study and failed the quiz.", "What will Sasha want to do next?", "study harder next time",
     ["skip class", "celebrate"]),
    ("Ash lent Jordan a pen during the exam.", "How would Jordan feel as a result?", "relieved and thankful",
     ["furious", "jealous"]),
    ("Jordan got a puppy for their birthday.", "What will Jordan want to do next?", "play with the new puppy",
     ["sell it", "go to bed"]),
]

SIQA_TRAIN = [
    ("Riley painted the fence on a sunny Saturday.", "Why did Riley do this?", "to make it look nice",
     ["to get lost", "to ruin it"]),
    ("Quinn cooked breakfast for their parents.", "How would Others feel as a result?", "grateful",
     ["angry at Quinn", "scared of the food"]),
    ("Kai forgot their homework at home.", "What will Kai need to do?", "explain to the teacher",
     ["buy a car", "go swimming"]),
    ("Tracy found a stray cat in the rain.", "What will Tracy want to do next?", "bring it inside",
     ["chase it away", "ignore it"]),
    ("Alex won the lottery last week.", "How would Alex feel?", "excited", ["miserable about the money", "bored"]),
    ("Casey broke a glass while washing the dishes.", "What will Casey want to do next?", "sweep up the pieces",
     ["break another glass", "leave it"]),
    ("Remy told Robin a story about the trip.", "How would Robin feel as a result?", "entertained",
     ["furious", "tired of being insulted"]),
    ("Jesse watered the garden every evening.", "Why did Jesse do this?", "to keep the plants alive",
     ["to drown the plants", "to flood"]),
]

# ---------------------------------------------------------------------------------------------------------------
# BoolQ: (question, passage, answer)
# ---------------------------------------------------------------------------------------------------------------
BOOLQ_VAL = [
    ("is the moon larger than pluto",
     "Moon -- The Moon is Earth's only natural satellite. With a diameter of about 3,475 kilometres, it is larger "
     "than the dwarf planet Pluto, whose diameter is roughly 2,377 kilometres. It is the fifth largest moon in the "
     "Solar System.", True),
    ("is a tomato a vegetable in botanical terms",
     "Tomato -- The tomato is the edible berry of the plant Solanum lycopersicum. Botanically it is a fruit, because "
     "it develops from the flower's ovary and contains seeds. In cooking, however, it is usually treated as a "
     "vegetable and served in savoury dishes.", False),
    ("does water boil at a lower temperature at high altitude",
     "Boiling point -- The boiling point of a liquid depends on the pressure around it. At high altitude the air "
     "pressure is lower, so water boils at a lower temperature than at sea level. This is why cooking times for "
     "boiled food are often longer in the mountains.", True),
    ("is mount everest located in the andes",
     "Mount Everest -- Mount Everest is the highest mountain above sea level on Earth. It lies in the Mahalangur "
     "Himal range of the Himalayas, on the border between Nepal and the Tibet Autonomous Region of China. Its summit "
     "stands at about 8,849 metres.", False),
    ("can penguins fly",
     "Penguin -- Penguins are a group of aquatic, flightless birds that live almost entirely in the Southern "
     "Hemisphere. Their wings have evolved into flippers that make them strong swimmers. On land they walk with an "
     "upright waddle or slide on their bellies across the ice.", False),
    ("is a whale a mammal",
     "Whales are large marine mammals belonging to the order Cetacea. Like other mammals, they breathe air through "
     "lungs, are warm-blooded and feed their young with milk. Some species, such as the blue whale, are the largest "
     "animals known to have lived.", True),
    ("is the great wall of china visible from the moon with the naked eye",
     "Great Wall of China -- The Great Wall is a series of fortifications built across northern China over many "
     "centuries – from the seventh century BC onward. Although it is very long, it is narrow, and astronauts have "
     "reported that it cannot be seen from the Moon without optical aid. The claim is a popular myth.", False),
    ("is venus the hottest planet in the solar system",
     "Venus -- Venus is the second planet from the Sun. Its thick atmosphere of carbon dioxide traps heat, giving it "
     "an average surface temperature of around 465 °C. This makes it hotter than Mercury, even though Mercury is "
     "closer to the Sun.", True),
    ("do all deserts have hot climates",
     "Desert -- A desert is a region that receives very little precipitation. Not all deserts are hot: the interior "
     "of Antarctica is classed as a cold desert, and the Gobi has very cold winters. What deserts share is dryness "
     "rather than heat.", False),
    ("is portuguese the official language of brazil",
     "Brazil -- Brazil is the largest country in South America by both area and population. Its official language "
     "is Portuguese, a legacy of the colonial period. Spanish is widely understood near the borders but has no "
     "official status.", True),
    ("is glass a good conductor of electricity",
     "Glass -- Glass is a hard, usually transparent material made mainly from silica. At room temperature it is an "
     "electrical insulator, which is why it has long been used for insulators on power lines. It also conducts heat "
     "poorly.", False),
    ("is the nile longer than the thames",
     "Nile -- The Nile is a major river in northeastern Africa that flows north into the Mediterranean Sea. It is "
     "about 6,650 kilometres long and is often listed as the longest river in the world. By comparison, the River "
     "Thames in England is about 346 kilometres long.", True),
    ("do spiders have six legs",
     "Spider -- Spiders are air-breathing arthropods that have eight legs and jaws with fangs that can inject venom. "
     "They are the largest order of arachnids. Insects, by contrast, have six legs, which is one of the features "
     "used to tell the two groups apart.", False),
    ("is tokyo the capital of japan",
     "Tokyo -- Tokyo is the capital and most populous city of Japan. It became the seat of the imperial court in "
     "1868, when the emperor moved there from Kyoto. The greater Tokyo area is one of the largest urban areas in the "
     "world.", True),
    ("are auroras usually seen near the poles",
     "Aurora -- An aurora is a natural display of light in the sky, seen mainly in high-latitude regions around the "
     "Arctic and Antarctic. It is caused by charged particles from the Sun interacting with the upper atmosphere. "
     "Auroras are very rarely seen near the equator, and then only during unusually strong geomagnetic storms.",
     True),
    ("is the heart on the right side of the body",
     "Heart -- The human heart is a muscular organ that pumps blood through the circulatory system. It sits in the "
     "chest between the lungs, slightly to the left of the breastbone. In a rare condition called dextrocardia, the "
     "heart points toward the right side instead.", False),
    ("is crème brûlée served cold",
     "Crème brûlée -- Crème brûlée is a dessert of rich custard topped with a layer of hardened "
     "caramelised sugar. The custard is usually served chilled, while the sugar on top is caramelised just before "
     "serving with a torch or grill. The contrast between the cold custard and the brittle top is part of its appeal.",
     True),
    ("is the pacific ocean the smallest ocean",
     "Pacific Ocean -- The Pacific Ocean is the largest and deepest of Earth's five oceanic divisions. It stretches "
     "from the Arctic Ocean in the north to the Southern Ocean in the south. The smallest ocean is the Arctic "
     "Ocean.", False),
    ("do plants release oxygen during photosynthesis",
     "Photosynthesis -- Photosynthesis is the process by which green plants and some other organisms use sunlight "
     "to make sugars from carbon dioxide and water. Oxygen is released as a by-product. Most of the oxygen in "
     "Earth's atmosphere comes from this process.", True),
    ("is a bat a bird",
     "Bat -- Bats are mammals of the order Chiroptera. Their forelimbs are adapted as wings, making them the only "
     "mammals capable of true and sustained flight. Unlike birds, they have fur and give birth to live young.",
     False),
    ("is lightning hotter than the surface of the sun",
     "Lightning -- Lightning is a sudden electrostatic discharge that occurs during a thunderstorm. The air in a "
     "lightning channel can briefly reach around 30,000 °C, several times hotter than the visible surface of the "
     "Sun. The rapid heating causes the shock wave heard as thunder.", True),
    ("is the eiffel tower in london",
     "Eiffel Tower -- The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. It was "
     "designed by the engineering company of Gustave Eiffel and completed in 1889 for a world fair. It has become a "
     "global symbol of France.", False),
    ("does the adult human body have 206 bones",
     "Human skeleton -- The skeleton of an adult human typically consists of 206 bones. A newborn baby has more, "
     "around 270, but many of them fuse together during growth. The smallest bone in the body is the stapes in the "
     "middle ear.", True),
    ("is copper a magnetic metal",
     "Copper -- Copper is a soft, malleable metal with very high thermal and electrical conductivity. It is not "
     "attracted to ordinary magnets, unlike iron, nickel and cobalt. Its reddish-orange colour makes it easy to "
     "recognise.", False),
    ("is the sun a star",
     "Sun -- The Sun is the star at the centre of the Solar System. It is a nearly perfect ball of hot plasma, "
     "heated by nuclear fusion in its core. It is classed as a yellow dwarf star.", True),
    ("is canberra the largest city in australia",
     "Canberra -- Canberra is the capital city of Australia.  It was chosen as a compromise between Sydney and "
     "Melbourne, the two largest cities, and was built as a planned city in the early twentieth century. Its "
     "population is far smaller than that of Sydney.", False),
    ("can honey stay edible for many years",
     "Honey -- Honey is a sweet, thick substance made by honey bees from the nectar of flowers. Because it is low in "
     "water and slightly acidic, very few bacteria can grow in it. Stored in a sealed container, honey can remain "
     "edible for many years.", True),
    ("is a peanut a true nut",
     "Peanut -- The peanut is a legume crop grown mainly for its edible seeds. Although it is called a nut, "
     "botanically it is not a true nut, since the seeds grow in pods underground like beans and peas. Peanuts are "
     "widely eaten roasted or as peanut butter.", False),
    ("is mercury a liquid at room temperature",
     "Mercury (element) -- Mercury is a chemical element with the symbol Hg. It is the only metal that is liquid at "
     "standard room temperature and pressure. It was once widely used in thermometers and barometers.", True),
    ("do octopuses have bones",
     "The octopus is a soft-bodied, eight-limbed mollusc. It has no internal or external skeleton, which allows it "
     "to squeeze through very small gaps. Only its hard beak, made of chitin, cannot be compressed.", False),
    ("is the statue of liberty a gift from france",
     "Statue of Liberty -- The Statue of Liberty is a large copper statue on Liberty Island in New York Harbor. It "
     "was a gift from the people of France to the people of the United States and was dedicated in 1886. The "
     "statue was designed by Frédéric Auguste Bartholdi.", True),
    ("is a year on mars shorter than a year on earth",
     "Mars -- Mars is the fourth planet from the Sun. Because it orbits farther out, it takes about 687 Earth days "
     "to go once around the Sun. A day on Mars, however, is only slightly longer than a day on Earth.", False),
    ("can sound travel through water",
     "Sound -- Sound is a vibration that travels as a wave through a medium such as a gas, a liquid or a solid. It "
     "moves about four times faster in water than in air. Sound cannot travel through a vacuum, because there is "
     "nothing there to carry the vibration.", True),
    ("is the amazon rainforest mostly in argentina",
     "Amazon rainforest -- The Amazon rainforest covers much of the Amazon basin of South America. The majority of "
     "the forest lies within Brazil, with smaller parts in Peru, Colombia and several other countries. It is the "
     "largest tropical rainforest in the world.", False),
    ("is a mile longer than a kilometre",
     "Mile -- The mile is a unit of length used mainly in the United States and the United Kingdom. One "
     "international mile is equal to exactly 1,609.344 metres. A kilometre is therefore shorter than a mile, at "
     "about 0.62 miles.", True),
    ("was the telephone invented in the twentieth century",
     "Telephone -- The telephone is a device that lets two or more people talk to each other across a distance. "
     "Alexander Graham Bell was granted the first United States patent for a telephone in 1876. Early telephones "
     "were connected directly in pairs before exchanges were introduced.", False),
    ("is the dead sea saltier than the ocean",
     "Dead Sea -- The Dead Sea is a salt lake bordered by Jordan to the east and by Israel and the West Bank to the "
     "west. Its water is almost ten times saltier than the ocean, which makes swimming in it feel like floating. "
     "Few living things other than bacteria can survive there.", True),
    ("is a koala a type of bear",
     "Koala -- The koala is a tree-dwelling marsupial native to Australia. Despite the common name “koala bear”, "
     "it is not a bear at all; its closest living relatives are the wombats. Koalas feed almost entirely on "
     "eucalyptus leaves.", False),
    ("can the human eye see ultraviolet light",
     "Ultraviolet -- Ultraviolet light is electromagnetic radiation with a wavelength shorter than that of visible "
     "light. Most humans cannot see it, because the lens of the eye blocks most ultraviolet wavelengths. Some "
     "insects and birds, however, can see ultraviolet patterns on flowers and feathers.", False),
    ("does the earth have one natural satellite",
     "Natural satellite -- A natural satellite is a body that orbits a planet. Earth has one natural satellite, the "
     "Moon, while Mars has two small moons named Phobos and Deimos. The gas giants Jupiter and Saturn each have "
     "dozens.", True),
]

BOOLQ_TRAIN = [
    ("is the sahara the largest hot desert",
     "Sahara -- The Sahara is a desert spanning much of North Africa. It is the largest hot desert in the world. "
     "Only the cold deserts of Antarctica and the Arctic are larger.", True),
    ("is a dolphin a fish",
     "Dolphin -- Dolphins are aquatic mammals related to whales. They breathe air through a blowhole and nurse "
     "their young. They are known for their intelligence.", False),
    ("is iron attracted to magnets",
     "Iron -- Iron is a metal that is strongly attracted to magnets. It is the most common element on Earth by "
     "mass. Most of it is used to make steel.", True),
    ("is the capital of canada toronto",
     "Ottawa -- Ottawa is the capital city of Canada. It stands on the south bank of the Ottawa River in Ontario. "
     "Toronto is the country's largest city.", False),
    ("do deciduous trees lose their leaves in autumn",
     "Deciduous -- Deciduous trees shed their leaves each year, usually in autumn. This helps them save water "
     "through the cold season. Evergreen trees keep their leaves all year.", True),
    ("is the arctic ocean the largest ocean",
     "Arctic Ocean -- The Arctic Ocean is the smallest and shallowest of the world's five oceans. It lies mostly "
     "north of the Arctic Circle. Much of it is covered by sea ice.", False),
    ("does light travel faster than sound",
     "Speed of light -- Light travels through a vacuum at about 300,000 kilometres per second. Sound in air moves "
     "at only about 343 metres per second. This is why lightning is seen before thunder is heard.", True),
    ("is a tomato a type of berry",
     "Berry (botany) -- In botany, a berry is a fleshy fruit produced from a single flower with one ovary. By this "
     "definition, tomatoes, grapes and bananas are berries. Strawberries, despite the name, are not.", True),
]


# ---------------------------------------------------------------------------------------------------------------
# Placing the gold among the choices
# ---------------------------------------------------------------------------------------------------------------
def length_rank(texts, gold):
    """How many choices sort before the gold by (character length, position): 0 = shortest, n-1 = longest."""
    def key(i):
        return len(texts[i]), i
    return sum(key(i) < key(gold) for i in range(len(texts)))


def place(items, rng, balance):
    """items: [(gold, [wrong answers])] -> [(choices, gold position)].

    With balance, every position and every length rank holds the gold exactly len(items)/n times. A gold's rank is
    fixed by the hand-written lengths unless it ties in length with a wrong answer; a depth-first search picks the
    positions (tried in a seeded order) so that both counts come out even. Without balance (train splits), the
    gold positions simply cycle."""
    n = len(items[0][1]) + 1
    options = []  # per item: [(position, rank, choices)] in a seeded order
    for gold, wrong in items:
        assert len(wrong) == n - 1 and gold not in wrong, (gold, wrong)
        wrong = list(wrong)
        rng.shuffle(wrong)
        cands = []
        for p in rng.sample(range(n), n):
            texts = wrong[:p] + [gold] + wrong[p:]
            cands.append((p, length_rank(texts, p), texts))
        options.append(cands)
    if not balance:
        return [next((texts, p) for p, _, texts in cands if p == i % n) for i, cands in enumerate(options)]

    assert len(items) % n == 0, "a balanced split needs a multiple of n_choices rows"
    quota = len(items) // n
    fixed = Counter(cands[0][1] for cands in options if len({r for _, r, _ in cands}) == 1)
    if any(c > quota for c in fixed.values()):
        raise ValueError(f"gold length ranks {dict(sorted(fixed.items()))} exceed {quota} each: edit the texts")
    pos_left, rank_left = [quota] * n, [quota] * n
    chosen = [None] * len(items)
    order = sorted(range(len(items)), key=lambda i: len({r for _, r, _ in options[i]}))  # fixed ranks first
    steps = [0]

    def search(j):
        if j == len(order):
            return True
        steps[0] += 1
        if steps[0] > 100_000:
            raise ValueError("no balanced placement found: edit the texts")
        i = order[j]
        for p, r, texts in options[i]:
            if pos_left[p] and rank_left[r]:
                pos_left[p] -= 1
                rank_left[r] -= 1
                chosen[i] = (texts, p)
                if search(j + 1):
                    return True
                pos_left[p] += 1
                rank_left[r] += 1
        return False

    if not search(0):
        raise ValueError("no balanced placement found: edit the texts")
    return chosen


# ---------------------------------------------------------------------------------------------------------------
# Rows in the hub schemas (keys in the hub's column order)
# ---------------------------------------------------------------------------------------------------------------
LETTERS = "ABCDE"


def piqa(items, rng, balance):
    return [{"goal": goal, "sol1": texts[0], "sol2": texts[1], "label": p}
            for (goal, _, _), (texts, p) in zip(items, place([(g, [w]) for _, g, w in items], rng, balance))]


def winogrande(items, rng, balance):
    return [{"sentence": s, "option1": texts[0], "option2": texts[1], "answer": str(p + 1)}
            for (s, _, _), (texts, p) in zip(items, place([(g, [w]) for _, g, w in items], rng, balance))]


def commonsense_qa(items, rng, balance, used_ids):
    rows = []
    for (q, concept, _, _), (texts, p) in zip(items, place([(g, w) for _, _, g, w in items], rng, balance)):
        rows.append({"id": new_id(rng, used_ids, lambda: f"{rng.getrandbits(128):032x}"), "question": q,
                     "question_concept": concept, "choices": {"label": list(LETTERS), "text": texts},
                     "answerKey": LETTERS[p]})
    return rows


def openbookqa(items, rng, balance, used_ids):
    def obqa_id():  # the hub mixes ids like "7-980" with plain numbers like "1234"
        return f"{rng.randint(7, 9)}-{rng.randint(1, 999)}" if rng.random() < 0.7 else str(rng.randint(100, 1999))
    rows = []
    for (stem, _, _), (texts, p) in zip(items, place([(g, w) for _, g, w in items], rng, balance)):
        rows.append({"id": new_id(rng, used_ids, obqa_id), "question_stem": stem,
                     "choices": {"text": texts, "label": list(LETTERS[:4])}, "answerKey": LETTERS[p]})
    return rows


def social_iqa(items, rng, balance):
    return [{"context": c, "question": q, "answerA": texts[0], "answerB": texts[1], "answerC": texts[2],
             "label": str(p + 1)}
            for (c, q, _, _), (texts, p) in zip(items, place([(g, w) for _, _, g, w in items], rng, balance))]


def boolq(items, rng, balance):
    if balance:
        assert sum(label for *_, label in items) * 2 == len(items), "BoolQ needs as many true as false"
    return [{"question": q, "passage": passage, "idx": i, "label": int(label)}
            for i, (q, passage, label) in enumerate(items)]


def new_id(rng, used, make):
    while (rid := make()) in used:
        pass
    used.add(rid)
    return rid


def write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{path.relative_to(HERE)}: {len(rows)} rows")


def main():
    rng = random.Random(SEED)
    csqa_ids, obqa_ids = set(), set()
    tasks = [  # (folder, scored split, build(items, balance), scored items, train items)
        ("piqa", "validation", lambda it, b: piqa(it, rng, b), PIQA_VAL, PIQA_TRAIN),
        ("winogrande", "validation", lambda it, b: winogrande(it, rng, b), WINOGRANDE_VAL, WINOGRANDE_TRAIN),
        ("commonsense_qa", "validation", lambda it, b: commonsense_qa(it, rng, b, csqa_ids), CSQA_VAL, CSQA_TRAIN),
        ("openbookqa", "test", lambda it, b: openbookqa(it, rng, b, obqa_ids), OBQA_TEST, OBQA_TRAIN),
        ("social_iqa", "validation", lambda it, b: social_iqa(it, rng, b), SIQA_VAL, SIQA_TRAIN),
        ("boolq", "validation", lambda it, b: boolq(it, rng, b), BOOLQ_VAL, BOOLQ_TRAIN),
    ]
    for folder, split, build, scored, train in tasks:
        # The hand-written order groups items by length rank: shuffle it, so that any first N rows (--limit) mix.
        scored, train = rng.sample(scored, len(scored)), rng.sample(train, len(train))
        write(HERE / folder / f"{split}.jsonl", build(scored, True))
        write(HERE / folder / "train.jsonl", build(train, False))


if __name__ == "__main__":
    main()
