"""Writes ARC-Easy/{test,train}.jsonl and ARC-Challenge/{test,train}.jsonl: our own grade-school science questions
in the exact allenai/ai2_arc schema (keys in upstream order: id, question, choices {text, label}, answerKey).

Seeded and deterministic: `python tests/data/arc/make_arc.py` rewrites the same files. Stdlib only. All text is our
own (hand-written items plus a few templates over small fact lists); no real ARC question is copied.

The upstream quirks are all present in every file:
  * letter labels A-D with 4 choices (the majority), letter labels A-C (3 choices) and A-E (5 choices);
  * digit labels "1".."4" (4 choices) and "1".."3" (3 choices), with answerKey then a digit string
    (these rows get NYSEDREGENTS_* ids, as upstream);
  * answer keys spread over every position; ids in the upstream styles (Mercury_7175875, Mercury_SC_400987,
    MCAS_2000_4_6, NYSEDREGENTS_2015_4_8, ACTAAP_2007_7_11, TIMSS_2011_4_pg20, MDSA_2008_5_30, VASoL_2009_3_17, ...),
    unique over all four files;
  * questions ending in "?", and fill-in stems with no final punctuation; inner quotes, parentheses, semicolons,
    numbers with units; a handful of non-ASCII characters (°C, µm, cm³, →, ×, −, names with accents), also inside
    choice texts, where character length and UTF-8 byte length differ (acc_norm in lm-eval divides by characters).
"""
import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 20240611

# --------------------------------------------------------------------------------------------------------------
# Hand-written items: (question, correct answer, [4 distractors]).
# --------------------------------------------------------------------------------------------------------------
EASY = [
    ("Which of these is a source of light?", "a burning candle",
     ["a mirror", "the Moon", "a glass window", "a white wall"]),
    ("Which part of a plant takes in water from the soil?", "the roots",
     ["the leaves", "the flowers", "the seeds", "the petals"]),
    ("What do green plants take in from the air to make their own food?", "carbon dioxide",
     ["oxygen", "nitrogen", "helium", "argon"]),
    ("Which object is attracted to a magnet?", "an iron nail",
     ["a plastic spoon", "a wooden pencil", "a rubber band", "a glass marble"]),
    ("A puddle on the playground is gone by the end of a sunny afternoon. Where did most of the water go?",
     "It evaporated into the air.",
     ["It froze into ice.", "It turned into sand.", "It was pulled up by the Moon.", "It changed into soil."]),
    ("Which tool would a student use to look at the tiny cells in a thin piece of onion skin?", "a microscope",
     ["a telescope", "a thermometer", "a rain gauge", "a compass"]),
    ("What causes day and night on Earth?", "Earth spinning on its axis",
     ["Earth moving around the Sun", "the Moon moving around Earth", "the Sun moving around Earth",
      "clouds blocking the sunlight"]),
    ("How long does it take Earth to travel once around the Sun?", "about 365 days",
     ["about 24 hours", "about 7 days", "about 30 days", "about 10 years"]),
    ("Which form of precipitation falls from storm clouds as small balls of ice?", "hail",
     ["fog", "dew", "rain", "steam"]),
    ("Which of these is a renewable resource?", "wind",
     ["coal", "oil", "natural gas", "uranium"]),
    ("What is the main job of the lungs?", "to bring oxygen into the body",
     ["to pump blood", "to digest food", "to hold up the body", "to make bones grow"]),
    ("A ball rolls across a carpet and slowly comes to a stop. Which force makes the ball stop?", "friction",
     ["magnetism", "electricity", "buoyancy", "a push from the air in front of it"]),
    ("Which is the best way to keep a cup of hot cocoa warm for a longer time?", "Put a lid on the cup.",
     ["Stir it with a metal spoon.", "Set it by an open window.", "Pour it onto a flat plate.",
      "Add a few ice cubes."]),
    ("Which of these animals goes through complete metamorphosis (egg, larva, pupa, adult)?", "a butterfly",
     ["a grasshopper", "a dog", "a snake", "a robin"]),
    ("What does a seed need in order to begin to grow?", "water and warmth",
     ["bright light and wind", "salt and sand", "darkness and cold", "snow and ice"]),
    ("Which layer of Earth is the thinnest?", "the crust",
     ["the mantle", "the outer core", "the inner core", "the lower mantle"]),
    ("Which type of rock forms when lava cools and hardens?", "igneous rock",
     ["sedimentary rock", "metamorphic rock", "limestone", "sandstone"]),
    ("Fossils are most often found in which kind of rock?", "sedimentary",
     ["igneous", "metamorphic", "volcanic", "granite"]),
    ("Workers use a long ramp to slide a heavy box up into a truck. The ramp is which simple machine?",
     "an inclined plane", ["a pulley", "a lever", "a wheel and axle", "a screw"]),
    ("Pure water freezes at what temperature?", "0 °C",
     ["100 °C", "32 °C", "−10 °C", "50 °C"]),
    ("At sea level, pure water boils at about", "100 °C",
     ["0 °C", "37 °C", "212 °C", "50 °C"]),
    ("Which of these is the best example of a chemical change?", "a piece of wood burning",
     ["ice melting", "paper being torn", "sugar dissolving in tea", "a glass breaking"]),
    ("Which of these is a physical change?", "cutting an apple into slices",
     ["baking a cake", "a nail rusting", "a match burning", "milk turning sour"]),
    ('Which planet is often called the "Red Planet"?', "Mars",
     ["Venus", "Jupiter", "Saturn", "Mercury"]),
    ("What is the largest planet in our solar system?", "Jupiter",
     ["Earth", "Saturn", "Neptune", "Mars"]),
    ("Why does the Moon appear to shine at night?", "It reflects light from the Sun.",
     ["It makes its own light.", "It is covered in glowing rocks.", "It reflects light from Earth's cities.",
      "It burns gas like a star."]),
    ("A student stirs sand into a cup of water. What is the easiest way to separate the sand from the water?",
     "pour the mixture through a filter",
     ["hold a magnet over the cup", "shake the cup hard", "add more sand", "put the cup in a freezer"]),
    ("Iron filings are mixed with table salt. Which tool separates the iron filings most easily?", "a magnet",
     ["a thermometer", "a hand lens", "a ruler", "a stopwatch"]),
    ("Which animal is most likely to hibernate during a long, cold winter?", "a black bear",
     ["a cow", "a horse", "a pet goldfish", "a parrot"]),
    ("Which of these is an inherited trait?", "eye color",
     ["the ability to ride a bike", "speaking French", "a scar on the knee", "knowing how to swim"]),
    ("Which of these is a learned behavior?", "a dog sitting when its owner says \"sit\"",
     ["a spider spinning a web", "a bird building a nest", "a baby crying when hungry",
      "a turtle laying eggs in the sand"]),
    ("What is the main source of energy for almost all living things on Earth?", "the Sun",
     ["the Moon", "the wind", "the soil", "ocean water"]),
    ("Which organ pumps blood through the body?", "the heart",
     ["the stomach", "the brain", "the lungs", "the liver"]),
    ("Which part of the body is protected by the skull?", "the brain",
     ["the heart", "the lungs", "the stomach", "the kidneys"]),
    ("Sound travels fastest through which of these?", "a steel rail",
     ["air", "water", "empty space", "a balloon filled with helium"]),
    ("When you hear thunder, what is making the sound?", "air expanding quickly after lightning heats it",
     ["clouds bumping into each other", "rain hitting the ground", "wind blowing through the trees",
      "the Moon pulling on the clouds"]),
    ("Which of these materials is a good electrical insulator?", "rubber",
     ["copper", "aluminum", "silver", "iron"]),
    ("A plant is placed near a sunny window. After a week, its stem bends toward the window. This is a response to",
     "light", ["gravity", "sound", "touch", "cold air"]),
    ("Which is a characteristic of all mammals?", "They have hair or fur.",
     ["They lay eggs.", "They live in water.", "They can fly.", "They have scales."]),
    ("The Moon takes about how long to go through all of its phases?", "about one month",
     ["about one day", "about one week", "about one year", "about ten years"]),
    ("Which gas makes up most of the air we breathe?", "nitrogen",
     ["oxygen", "carbon dioxide", "hydrogen", "helium"]),
    ("A student needs to measure out 250 mL of water. Which tool should the student use?", "a graduated cylinder",
     ["a ruler", "a spring scale", "a thermometer", "a stopwatch"]),
    ("What happens to most metals when they are heated?", "They expand.",
     ["They shrink.", "They become magnetic.", "They turn into a gas right away.", "They lose all their mass."]),
    ("Which star is closest to Earth?", "the Sun",
     ["Polaris", "Sirius", "Betelgeuse", "Alpha Centauri A"]),
    ("Which of these is NOT a living thing?", "a rock",
     ["a mushroom", "a tree", "a worm", "a patch of moss"]),
    ("Which of these is a way people can conserve water at home?", "turning off the faucet while brushing teeth",
     ["taking longer showers", "watering the lawn at noon", "washing half-empty loads of laundry",
      "leaving the hose running"]),
    ("Ms. Lee's class plants beans in two cups. One cup is kept in a dark closet; the other sits on a sunny "
     "windowsill. What is the class testing?", "whether light affects plant growth",
     ["whether beans like closets", "how fast water evaporates", "which cup is bigger",
      "whether soil changes color"]),
    ("What is the freezing point of water on the Fahrenheit scale?", "32 °F",
     ["0 °F", "100 °F", "212 °F", "98.6 °F"]),
    ("An ice cube is left on a plate in a warm room. What will it most likely be after an hour?", "liquid water",
     ["steam", "a small stone", "salt", "a larger ice cube"]),
    ("Which of these animals has an exoskeleton?", "a beetle",
     ["a cat", "a frog", "a trout", "a snake"]),
    ("Which part of a flower makes pollen?", "the stamen",
     ["the root", "the sepal", "the stem", "the leaf"]),
    ("Bees help flowering plants by", "carrying pollen from flower to flower",
     ["eating the roots", "making the leaves green", "giving the plant water", "keeping rain off the petals"]),
    ("Clouds are made mostly of", "tiny drops of water or bits of ice",
     ["smoke", "dust", "cotton-like fibers", "gases from volcanoes"]),
    ("In a meadow, a rabbit eats grass and a fox eats the rabbit. What is the rabbit?", "a consumer",
     ["a producer", "a decomposer", "a mineral", "a source of sunlight"]),
    ("Which of these is the best example of weathering?", "a rock cracking when water freezes inside it",
     ["lava cooling into rock", "sand settling at the mouth of a river", "a volcano erupting",
      "snow piling up into a glacier"]),
    ("Which change will make a pendulum swing back and forth more slowly?", "making the string longer",
     ["making the string shorter", "painting the weight red", "swinging it indoors", "using a shinier weight"]),
    ("What is the job of red blood cells?", "to carry oxygen",
     ["to fight germs", "to help blood clot", "to send nerve signals", "to digest fat"]),
    ("The Sun is a", "star", ["planet", "moon", "comet", "galaxy"]),
    ("About how many hours does it take Earth to rotate once on its axis?", "24",
     ["12", "48", "365", "7"]),
    ("A 2 kg rock and a 10 kg rock are dropped at the same time from the same height. If air resistance is "
     "ignored, which one lands first?", "They land at the same time.",
     ["the 2 kg rock", "the 10 kg rock", "It depends on the color of the rocks.", "whichever rock is rounder"]),
    ("Which natural resource is used to make paper?", "trees",
     ["oil", "iron ore", "sand", "salt"]),
    ("Glass is made mostly from", "sand", ["wood", "coal", "wool", "cotton"]),
    ("Which organism is a decomposer?", "a mushroom",
     ["a hawk", "a rose bush", "a deer", "a grasshopper"]),
    ("Why do many birds fly south in the fall?", "to find food and warmer weather",
     ["to visit the ocean", "because their feathers fall out", "to lay eggs in the snow",
      "because the days get longer"]),
    ("Which of these is a solid at room temperature (about 20 °C)?", "a copper coin",
     ["milk", "oxygen", "orange juice", "steam"]),
    ("Which of these is the smallest?", "an atom",
     ["a cell", "a grain of sand", "an ant", "a pea"]),
    ("A red blood cell is about 8 µm across. Which tool is needed to see it?", "a microscope",
     ["a telescope", "binoculars", "a flat mirror", "a periscope"]),
    ("On a sunny day, at which of these times is a flagpole's shadow the longest?", "7:30 a.m.",
     ["noon", "12:30 p.m.", "11:45 a.m.", "1:00 p.m."]),
    ("Which of these describes the weather rather than the climate?", "It is raining in the city this morning.",
     ["Summers there are usually hot and dry.", "The region gets about 90 cm of rain each year.",
      "Winters in the north are long and cold.", "The desert is dry for most of the year."]),
    ("Earth's axis is tilted. This tilt is the main cause of", "the seasons",
     ["the tides", "day and night", "the phases of the Moon", "earthquakes"]),
    ("Which of these is a mixture?", "a fruit salad",
     ["pure water", "oxygen gas", "gold", "table salt"]),
    ("Which animal uses gills to breathe?", "a shark",
     ["a whale", "a dolphin", "a seal", "a sea turtle"]),
    ("Tomás puts a metal spoon in a bowl of hot soup. After a minute the handle feels warm. How did the heat move "
     "up the spoon?", "by conduction",
     ["by evaporation", "by condensation", "by magnetism", "by photosynthesis"]),
    ("Which of these is the best conductor of heat?", "a metal pan",
     ["a wooden spoon", "a wool mitten", "a plastic cup", "a foam cooler"]),
    ("What is the name for the path Earth follows around the Sun?", "an orbit",
     ["an axis", "a rotation", "an eclipse", "a phase"]),
    ("Which of these animals is a herbivore?", "a cow",
     ["a lion", "a shark", "a hawk", "a wolf"]),
    ("Which of these animals is a carnivore?", "a wolf",
     ["a rabbit", "a deer", "a cow", "a horse"]),
    ("Most of Earth's surface is covered by", "water",
     ["ice", "sand", "forests", "cities"]),
    ("Which of these is made by people and not found in nature?", "a plastic bottle",
     ["a pinecone", "a seashell", "a feather", "a pebble"]),
    ("Which feature helps a cactus survive in a hot, dry desert?", "a thick stem that stores water",
     ["large, thin leaves", "bright red flowers all year", "a need for daily rain", "leaves that float on water"]),
    ("What do we call an animal that hunts and eats other animals?", "a predator",
     ["prey", "a producer", "a decomposer", "a pollinator"]),
    ("What is the main function of a plant's leaves?", "to make food using sunlight",
     ["to hold the plant in the soil", "to make seeds", "to store water underground",
      "to carry water up from the roots"]),
    ("Which is an example of a pull?", "opening a drawer",
     ["kicking a ball", "throwing a ball", "pressing a doorbell", "pushing a swing"]),
    ("Which season in the Northern Hemisphere has the most hours of daylight?", "summer",
     ["winter", "fall", "spring", "None; every season has the same daylight."]),
    ("What makes up one molecule of water?", "two hydrogen atoms and one oxygen atom",
     ["one hydrogen atom and two oxygen atoms", "two hydrogen atoms only",
      "one carbon atom and two oxygen atoms", "one sodium atom and one chlorine atom"]),
    ("Which of these would most likely cause erosion on a bare hillside?", "heavy rain running downhill",
     ["a sunny day", "a full moon", "a calm, cold night", "a rainbow"]),
    ("What are the three states of matter most often seen in everyday life?", "solid, liquid, and gas",
     ["rock, water, and air", "hot, warm, and cold", "ice, snow, and rain", "mass, volume, and weight"]),
    ("A cell is the basic unit of", "life", ["weather", "energy", "rock", "sound"]),
    ("Which of these objects would float in a tub of water?", "a wooden block",
     ["a steel bolt", "a glass marble", "a stone", "a brass key"]),
    ("How does a chameleon protect itself from predators?", "by changing color to blend in",
     ["by growing a hard shell", "by spraying ink", "by rolling into a ball", "by roaring loudly"]),
    ("What can happen when warm, moist air rises and cools high in the sky?", "Clouds can form.",
     ["The air turns into rock.", "The Sun gets brighter.", "The wind stops forever.",
      "The air becomes heavier than water."]),
    ("Which of these is a fossil fuel?", "coal",
     ["wind", "sunlight", "firewood", "flowing water"]),
    ("Which direction does the needle of a compass point?", "toward magnetic north",
     ["toward the Sun", "toward the nearest tree", "toward the equator", "straight down"]),
]

CHALLENGE = [
    ("A student places a thermometer in a beaker of ice water and heats it slowly. The temperature stays at 0 °C for "
     "several minutes before it starts to rise. What is the best explanation?",
     "The energy is being used to melt the ice.",
     ["The thermometer is broken.", "Heat cannot pass through glass.",
      "Ice water can never get warmer than 0 °C.", "The beaker reflects all of the heat."]),
    ("Which statement best explains why the same side of the Moon always faces Earth?",
     "The Moon rotates once in the same time it takes to orbit Earth.",
     ["The Moon does not rotate at all.", "Earth's magnetic field holds the Moon in place.",
      "The far side of the Moon is always dark.", "The Moon orbits Earth once every day."]),
    ("A population of moths lives on trees with dark bark. Over many years, dark-colored moths become more common "
     "than light-colored ones. Which process best explains this change?", "natural selection",
     ["erosion", "photosynthesis", "condensation", "migration of the trees"]),
    ("A scientist repeats an experiment three times and gets very similar results each time. Why is repeating the "
     "experiment important?", "It makes the results more reliable.",
     ["It changes the hypothesis.", "It removes the need for a control group.",
      "It proves the hypothesis is correct.", "It makes the experiment take less time."]),
    ("Which of these changes would most likely reduce the amount of carbon dioxide in the atmosphere?",
     "planting large areas of forest",
     ["burning more coal for electricity", "clearing rain forests for farms", "driving cars with larger engines",
      "burning piles of fallen leaves"]),
    ("In an experiment to test whether fertilizer affects the height of tomato plants, which of these should be kept "
     "the same for every plant?", "the amount of water each plant gets",
     ["the amount of fertilizer", "the final height of the plants", "the number of tomatoes produced",
      "the conclusion of the experiment"]),
    ("Why do coastal cities usually have milder winters than inland cities at the same latitude?",
     "Large bodies of water heat up and cool down slowly.",
     ["Ocean water is always warmer than 30 °C.", "Coastal cities receive more sunlight.",
      "Wind never blows near the ocean.", "Salt in the air traps heat."]),
    ("A ship's horn is heard about 3 seconds after the puff of steam from it is seen. What explains the delay?",
     "Light travels much faster than sound.",
     ["Sound travels faster than light.", "Steam blocks sound waves.", "The horn is louder than the steam.",
      "Sound cannot travel over water."]),
    ("A rock layer containing fossils of sea shells is found near the top of a mountain. What is the most likely "
     "explanation?", "The rock formed under an ocean and was later pushed upward.",
     ["Birds carried the shells up the mountain.", "Sea animals once lived on dry mountaintops.",
      "The shells were formed by the wind.", "People buried the shells there long ago."]),
    ("Which of the following is the best example of a behavioral adaptation?",
     "geese flying south in large flocks each autumn",
     ["the thick fur of a polar bear", "the sharp teeth of a shark", "the long neck of a giraffe",
      "the green color of a tree frog"]),
    ("Two identical balloons are rubbed on a wool sweater and then held close to each other. What will most likely "
     "happen?", "They push away from each other.",
     ["They pull together and stick.", "They both pop.", "Nothing, because balloons cannot hold a charge.",
      "They become permanent magnets."]),
    ("When a glacier melts and retreats, it often leaves large boulders sitting in open fields. How did the boulders "
     "most likely get there?", "They were carried and deposited by the moving ice.",
     ["They fell from the sky as meteorites.", "They grew from smaller stones in the soil.",
      "They were pushed up by earthquakes.", "Rivers rolled them uphill."]),
    ("A student wants to find out whether the color of a car affects how hot the inside gets in sunlight. Which is "
     "the independent variable?", "the color of the car",
     ["the temperature inside the car", "the time of day", "the size of the car", "the type of thermometer"]),
    ("Which energy transformation takes place in the leaves of a plant during photosynthesis?",
     "light energy to chemical energy",
     ["chemical energy to light energy", "heat energy to sound energy", "electrical energy to light energy",
      "chemical energy to mechanical energy"]),
    ("Which is the main reason that the planets stay in orbit around the Sun?", "the Sun's gravity",
     ["the solar wind", "the planets' magnetic fields", "friction with space dust", "the light from other stars"]),
    ("Over millions of years, the Atlantic Ocean has grown wider by a few centimeters per year. Which process causes "
     "this?", "movement of tectonic plates",
     ["erosion by ocean waves", "melting of polar ice", "rising sea levels from rain", "the pull of the Moon"]),
    ("In a grassland, hawks eat snakes, snakes eat mice, and mice eat seeds. If a disease kills most of the snakes, "
     "what will most likely happen first?", "The number of mice will increase.",
     ["The number of seeds will increase.", "The hawks will start eating seeds.",
      "The number of mice will decrease.", "The seeds will stop growing."]),
    ("Which property of a mineral is tested by rubbing it across a piece of unglazed white tile?", "streak",
     ["luster", "cleavage", "magnetism", "density"]),
    ("Which of these is the best evidence that Earth's continents were once joined together?",
     "matching fossils and rock layers on coasts that face each other across the ocean",
     ["All continents have mountains.", "The oceans are salty.", "Every continent has a desert.",
      "The continents are different sizes."]),
    ("A scientist notices that a lake has fewer fish each year after a factory opens upstream. What should the "
     "scientist do next?", "test the lake water for chemicals from the factory",
     ["close the factory immediately", "add more fish to the lake", "conclude that the fish moved away",
      "stop observing the lake"]),
    ("Which of the following best describes the function of mitochondria in a cell?",
     "They release energy from food.",
     ["They store genetic information.", "They make food from sunlight.",
      "They control what enters and leaves the cell.", "They hold the cell's shape like a wall."]),
    ("Why are fossils of tropical plants found in Antarctica today?",
     "Antarctica was once in a location with a warmer climate.",
     ["Tropical plants can grow in ice.", "Birds carried the fossils there.", "The fossils formed from snow.",
      "Antarctica has always been tropical."]),
    ("When salt is spread on an icy sidewalk, the ice melts even though the air temperature is −5 °C. Why?",
     "Salt lowers the freezing point of water.",
     ["Salt is hotter than ice.", "Salt raises the freezing point of water.", "Salt reflects sunlight onto the ice.",
      "Salt warms the air above the sidewalk."]),
    ("A hiker notices that water boils at a lower temperature high on a mountain than at the beach. What causes the "
     "difference?", "lower air pressure at high altitude",
     ["colder air on the mountain", "less sunlight at high altitude", "more oxygen on the mountain",
      "purer water on the mountain"]),
    ("Which statement about a lunar eclipse is correct?", "Earth is between the Sun and the Moon.",
     ["The Moon is between the Sun and Earth.", "The Sun is between Earth and the Moon.",
      "It can happen only during a new moon.", "It happens every night."]),
    ("Carlos builds a circuit with a battery, two wires, and a bulb, but the bulb does not light. What is the most "
     "likely reason?", "The circuit is not a closed loop.",
     ["The wires are made of copper.", "The battery is too new.", "The bulb is too bright.",
      "The wires are too short to carry light."]),
    ("Some bacteria in the soil break down dead leaves. What important role do these bacteria play in an "
     "ecosystem?", "They return nutrients to the soil.",
     ["They produce sunlight.", "They are the top predators.", "They turn soil into rock.",
      "They make the leaves grow back."]),
    ("Sea otters eat sea urchins, and sea urchins eat kelp. Which change would most likely cause the number of sea "
     "urchins to increase rapidly?", "a sharp decrease in the number of sea otters",
     ["an increase in the number of sea otters", "a sharp decrease in the amount of kelp",
      "a new disease among the sea urchins", "colder water with less food for urchins"]),
    ("Why does a long metal bridge have small gaps (expansion joints) built into it?",
     "to let the metal expand on hot days without cracking",
     ["to let rain drain off", "to make the bridge lighter", "to make the bridge cheaper",
      "to let cars drive faster"]),
    ('A student claims, "Heavier objects always fall faster than lighter ones." Which investigation would best test '
     "this claim?", "dropping balls of the same size but different masses from the same height and timing them",
     ["dropping one ball from several different heights", "weighing several balls on a balance",
      "rolling a ball across different surfaces", "dropping a feather outdoors on a windy day"]),
    ("A farmer grows corn in the same field every year, and the harvest gets smaller each year. What is the most "
     "likely cause?", "Nutrients in the soil are being used up.",
     ["The corn is growing too much.", "The field is getting more sunlight.", "Rain is adding too many minerals.",
      "The seeds are too large."]),
    ("Which step of a scientific investigation comes directly after forming a hypothesis?",
     "designing and carrying out an experiment",
     ["publishing the conclusion", "asking a question", "sharing the final results", "choosing a title"]),
    ("A balloon filled with air is sealed and cooled from 30 °C to 5 °C. What happens to the balloon?",
     "It gets smaller because the gas particles move more slowly.",
     ["It gets larger because the gas particles speed up.", "It stays the same size because no gas escapes.",
      "It pops because cold air is heavy.", "It turns into a liquid right away."]),
    ("The Sun appears much larger and brighter than other stars in the sky. What is the main reason?",
     "It is much closer to Earth.",
     ["It is the largest star in the galaxy.", "It is the hottest star in the universe.",
      "It is the only star that gives off light.", "It is younger than other stars."]),
    ("Which of these factors would most likely limit the size of a deer population in a forest?",
     "the amount of food available",
     ["the color of the leaves", "the number of clouds", "the number of rocks", "the height of the tallest tree"]),
    ("Which statement correctly compares a virus with a bacterium?",
     "A virus cannot reproduce without a host cell, but a bacterium can.",
     ["A virus is larger than a bacterium.", "A bacterium cannot reproduce on its own.",
      "Both are made of many cells.", "A virus makes its own food."]),
    ("A nail left outside for a month became covered in a reddish-brown coating. Which two substances reacted to "
     "form the coating?", "iron and oxygen",
     ["copper and water", "iron and nitrogen", "aluminum and salt", "carbon and helium"]),
    ("On a topographic map, the contour lines are very close together in one area. What does this show?",
     "a steep slope", ["a flat plain", "a lake", "a river delta", "a wide valley"]),
    ("Which process in the water cycle is driven mainly by energy from the Sun?", "evaporation",
     ["precipitation", "infiltration", "runoff down a hill", "the flow of groundwater"]),
    ("Two students measure the length of the same table. One records 1.52 m and the other records 152 cm. What can "
     "be concluded?", "Both measurements describe the same length.",
     ["The first student made an error.", "The second student made an error.",
      "The table shrank between the measurements.", "Meters and centimeters cannot be compared."]),
    ("Which layer of the atmosphere contains the ozone that protects living things from ultraviolet rays?",
     "the stratosphere",
     ["the troposphere", "the mesosphere", "the thermosphere", "the exosphere"]),
    ("Which structure is found in plant cells but not in animal cells?", "the chloroplast",
     ["the nucleus", "the cell membrane", "the mitochondrion", "the ribosome"]),
    ("A ball is thrown straight up into the air. At the very top of its path, which statement is true?",
     "Its speed is zero for an instant.",
     ["Gravity stops pulling on it.", "It has its greatest kinetic energy.", "Its mass becomes zero.",
      "It is speeding up."]),
    ("A town plans to build a dam across a river. Which of these is a likely negative effect on the environment?",
     "Fish may be blocked from swimming upstream to lay eggs.",
     ["The river will produce more oxygen.", "Electricity will become cheaper.",
      "There will be more water for farms.", "Flooding downstream will be reduced."]),
    ("A wave in a pond has a frequency of 2 waves per second and a wavelength of 0.5 m. What is the speed of the "
     "wave?", "1 m/s", ["4 m/s", "0.25 m/s", "2.5 m/s", "0.5 m/s"]),
    ("Which statement best explains why ice floats on liquid water?", "Ice is less dense than liquid water.",
     ["Ice is heavier than liquid water.", "Ice contains air from the freezer.",
      "Water pushes every solid upward.", "Ice is colder, so gravity pulls on it less."]),
    ("Sunlight passing through a glass prism spreads into a band of colors. What does this show about white light?",
     "It is made of many colors of light.",
     ["Glass adds color to light.", "Light cannot pass through glass.", "Light always travels in curves.",
      "The prism creates new energy."]),
    ("Which of the following is caused by Earth's revolution around the Sun rather than its rotation?",
     "the change of seasons during a year",
     ["the rising and setting of the Sun", "the change from day to night", "the Moon rising each evening",
      "the stars appearing to move across the sky during one night"]),
    ("A model of the solar system uses a ball 10 cm wide for the Sun. Earth is about 1/100 as wide as the Sun. About "
     "how wide should Earth be in the model?", "1 mm",
     ["1 cm", "10 cm", "0.1 mm", "1 m"]),
    ("Which would be the best material for the handle of a cooking pot?",
     "wood, because it is a poor conductor of heat",
     ["copper, because it conducts heat well", "aluminum, because it is shiny",
      "iron, because it is strong and heats quickly", "silver, because it looks nice"]),
    ("Which of these best explains why a desert can be very hot during the day but cold at night?",
     "Dry air and clear skies let heat escape quickly at night.",
     ["The Sun is closer to deserts during the day.", "Sand makes its own heat during the day.",
      "Deserts rise higher above sea level at night.", "The wind blows only at night."]),
    ("A student records the outdoor temperature every hour for one day. Which kind of graph would best show how the "
     "temperature changed over time?", "a line graph",
     ["a pie chart", "a Venn diagram", "a pictograph", "a food web"]),
    ("Which of these is an example of potential energy being changed into kinetic energy?",
     "a skier sliding down a hill",
     ["a battery sitting on a shelf", "a book resting on a table", "a car parked on a hill",
      "a stretched rubber band being held still"]),
    ("A geologist finds a fossil fish in one rock layer and a fossil fern in the layer just below it. If the layers "
     "have not been disturbed, which statement is true?", "The fern fossil is older than the fish fossil.",
     ["The fish fossil is older than the fern fossil.", "The two fossils must be the same age.",
      "The fish must have lived on land.", "The fern must have grown underwater."]),
    ("Burning fossil fuels adds greenhouse gases to the air. Which is the most likely long-term effect?",
     "an increase in average global temperature",
     ["a drop in sea level", "longer days", "a colder climate everywhere", "fewer storms in every region"]),
    ("Which of these would a nutritionist most likely recommend for building strong bones?",
     "foods rich in calcium, such as milk and yogurt",
     ["foods high in sugar", "drinks with caffeine", "very salty foods", "fried snacks"]),
]

# --------------------------------------------------------------------------------------------------------------
# Templates over small fact lists.
# --------------------------------------------------------------------------------------------------------------
ANIMALS = {
    "mammal": ["a whale", "a bat", "a goat"],
    "bird": ["a penguin", "an owl", "an ostrich"],
    "reptile": ["a lizard", "a crocodile", "a tortoise"],
    "amphibian": ["a salamander", "a toad", "a newt"],
    "fish": ["a salmon", "a seahorse", "a trout"],
    "insect": ["an ant", "a ladybug", "a moth"],
}
ARTICLE = {"mammal": "a mammal", "bird": "a bird", "reptile": "a reptile", "amphibian": "an amphibian",
           "fish": "a fish", "insect": "an insect"}
ANIMAL_STEMS = ["Which of these animals is {art}?", "Which animal is classified as {art}?"]

TOOLS = [  # (question, tool)
    ("Which instrument is used to measure wind speed?", "an anemometer"),
    ("Which instrument measures air pressure?", "a barometer"),
    ("A weather station keeps track of how much rain falls each day. Which tool collects and measures the rain?",
     "a rain gauge"),
    ("Which tool should be used to find the mass of a small rock?", "a pan balance"),
    ("Which tool is best for measuring the width of a classroom door?", "a meter stick"),
    ("Which tool would you use to time how long it takes a toy car to roll down a ramp?", "a stopwatch"),
    ("Which instrument shows the direction the wind is blowing from?", "a wind vane"),
    ("Which tool measures the weight of a backpack in newtons?", "a spring scale"),
    ("Which instrument measures how much water vapor is in the air?", "a hygrometer"),
    ("Which tool would a student use to find the temperature of a pond?", "a thermometer"),
]
UNITS = [  # (object, dimension, best unit)
    ("the length of a pencil", "length", "centimeters"),
    ("the distance between two cities", "length", "kilometers"),
    ("the mass of a paper clip", "mass", "grams"),
    ("the mass of a bag of potatoes", "mass", "kilograms"),
    ("the volume of water in a bathtub", "volume", "liters"),
    ("the volume of a spoonful of cough syrup", "volume", "milliliters"),
    ("the temperature of a lake", "temperature", "degrees Celsius"),
    ("the time it takes to run a 100 m race", "time", "seconds"),
]
ALL_UNITS = {"length": ["centimeters", "kilometers", "meters"], "mass": ["grams", "kilograms"],
             "volume": ["liters", "milliliters"], "temperature": ["degrees Celsius"],
             "time": ["seconds", "hours", "days"]}
UNIT_STEMS = ["Which unit is best for measuring {o}?", "A student wants to measure {o}. Which unit should be used?"]

STATES = {"solid": ["a brick", "an ice cube", "a wooden chair", "a steel key"],
          "liquid": ["apple juice", "cooking oil", "seawater", "honey"],
          "gas": ["the helium in a balloon", "water vapor", "the oxygen in the air", "steam from a kettle"]}
STATE_STEMS = {"solid": ["Which of these is a solid?", "Which of these keeps its own shape when moved to a new "
                         "container?"],
               "liquid": ["Which of these is a liquid?", "Which of these takes the shape of its container but "
                          "keeps the same volume?"],
               "gas": ["Which of these is a gas?", "Which of these spreads out to fill any container it is put "
                       "in?"]}

ENERGY = [  # (question, answer, form named in the question)
    ("A toaster changes electrical energy mostly into which form of energy?", "heat energy", "electrical energy"),
    ("A desk lamp is designed to change electrical energy into", "light energy", "electrical energy"),
    ("An electric fan changes electrical energy mostly into", "mechanical energy (motion)", "electrical energy"),
    ("A radio speaker changes electrical energy into which form of energy that people can hear?", "sound energy",
     "electrical energy"),
    ("A solar panel on a roof changes light energy into", "electrical energy", "light energy"),
    ("In what form is energy stored inside a flashlight battery?", "chemical energy", None),
]
ENERGY_FORMS = ["heat energy", "light energy", "mechanical energy (motion)", "sound energy", "electrical energy",
                "chemical energy", "nuclear energy"]

MACHINES = [
    ("A seesaw on a playground is an example of which simple machine?", "a lever"),
    ("The rope and wheel at the top of a flagpole form which simple machine?", "a pulley"),
    ("A doorknob is an example of which simple machine?", "a wheel and axle"),
    ("The sharp blade of an axe is an example of which simple machine?", "a wedge"),
    ("The lid of a jar that twists on and off uses which simple machine?", "a screw"),
]
MACHINE_NAMES = ["a lever", "a pulley", "a wheel and axle", "a wedge", "a screw", "an inclined plane"]

SPEED = [  # (mover, distance, dist unit, time, time unit, speed unit)
    ("A car", 180, "km", 3, "hours", "km/h"),
    ("A cyclist", 45, "km", 3, "hours", "km/h"),
    ("A runner", 400, "m", 80, "seconds", "m/s"),
    ("A snail", 60, "cm", 12, "minutes", "cm/min"),
    ("A train", 480, "km", 4, "hours", "km/h"),
    ("A toy car", 150, "cm", 5, "seconds", "cm/s"),
    ("A sea turtle", 90, "m", 6, "minutes", "m/min"),
    ("A swimmer", 100, "m", 50, "seconds", "m/s"),
    ("An airplane", 2400, "km", 3, "hours", "km/h"),
    ("A skateboarder", 84, "m", 12, "seconds", "m/s"),
]
SPEED_STEMS = ["{m} travels {d} {du} in {t} {tu}. What is the average speed of the {n}?",
               "{m} moves {d} {du} in {t} {tu} at a steady pace. What is the {n}'s speed?",
               "{m} covers a distance of {d} {du} in {t} {tu}. The average speed of the {n} is"]

DENSITY = [  # (object, mass g, volume cm3)
    ("A block of aluminum", 27, 10), ("A small iron bar", 79, 10), ("A plastic cube", 48, 16),
    ("A piece of rock", 90, 45), ("A block of pine wood", 30, 60), ("A chunk of ice", 45, 50),
    ("A piece of glass", 75, 30), ("A lead fishing weight", 113, 10),
]

PUNNETT = [  # (intro, recessive trait, dominant trait, letter)
    ("In pea plants, the allele for tall stems ({D}) is dominant over the allele for short stems ({r}).",
     "short", "tall", "T"),
    ("In guinea pigs, black fur ({D}) is dominant over white fur ({r}).", "white", "black", "B"),
    ("In a certain flower, purple petals ({D}) are dominant over white petals ({r}).", "white", "purple", "P"),
    ("In pea plants, round seeds ({D}) are dominant over wrinkled seeds ({r}).", "wrinkled", "round", "R"),
]
PUNNETT_CROSSES = [("{D}{r}", "{D}{r}", "25%"), ("{D}{r}", "{r}{r}", "50%"), ("{D}{D}", "{r}{r}", "0%"),
                   ("{D}{r}", "{D}{r}", "75%")]
PERCENTS = ["0%", "25%", "50%", "75%", "100%"]

CHAINS = [["grass", "a grasshopper", "a frog", "a snake", "a hawk"],
          ["phytoplankton", "krill", "a cod", "a seal", "an orca"],
          ["an oak tree", "a caterpillar", "a sparrow", "a weasel", "an owl"]]
CHAIN_ROLES = [(0, "Which organism in this food chain is the producer?"),
               (1, "Which organism in this food chain is a primary consumer (herbivore)?"),
               (4, "Which organism in this food chain is the top predator?")]


def cap(s):
    return s[0].upper() + s[1:]


def chain_text(chain):
    return " → ".join(cap(x.split(" ", 1)[1]) if x.startswith(("a ", "an ")) else cap(x) for x in chain)


def template_easy(rng):
    items = []
    classes = list(ANIMALS)
    for cls in classes:
        others = [c for c in classes if c != cls]
        for k, stem in enumerate(ANIMAL_STEMS):
            correct = ANIMALS[cls][k]
            dis = [rng.choice(ANIMALS[o]) for o in rng.sample(others, 4)]
            items.append((stem.format(art=ARTICLE[cls]), correct, dis))
    tools = [t for _, t in TOOLS] + ["a microscope", "a compass"]
    for q, t in TOOLS:
        items.append((q, t, rng.sample([x for x in tools if x != t], 4)))
    for k, (o, dim, u) in enumerate(UNITS):
        pool = [x for d, us in ALL_UNITS.items() if d != dim for x in us]
        items.append((UNIT_STEMS[k % 2].format(o=o), u, rng.sample(pool, 4)))
    for st in STATES:
        others = [x for s2, xs in STATES.items() if s2 != st for x in xs]
        for k, stem in enumerate(STATE_STEMS[st]):
            items.append((stem, STATES[st][k], rng.sample(others, 4)))
    for q, a, src in ENERGY:
        items.append((q, a, rng.sample([f for f in ENERGY_FORMS if f not in (a, src)], 4)))
    for q, a in MACHINES:
        items.append((q, a, rng.sample([m for m in MACHINE_NAMES if m != a], 4)))
    return items


def fmt(x):
    return f"{x:g}"


def template_challenge(rng):
    items = []
    for k, (m, d, du, t, tu, su) in enumerate(SPEED):
        v = d / t
        wrong = [d * t, d + t, d - t, v * 2, v / 2, t / d * 100]
        dis = []
        for w in wrong:
            s = f"{fmt(round(w, 2))} {su}"
            if s != f"{fmt(v)} {su}" and s not in dis:
                dis.append(s)
        items.append((SPEED_STEMS[k % 3].format(m=m, n=m.split(" ", 1)[1], d=d, du=du, t=t, tu=tu), f"{fmt(v)} {su}", dis[:4]))
    for k, (o, mass, vol) in enumerate(DENSITY):
        rho = mass / vol
        stem = (f"{o} has a mass of {mass} g and a volume of {vol} cm³. What is its density?" if k % 2 == 0 else
                f"{o} has a mass of {mass} g. When it is lowered into a graduated cylinder, the water level rises by "
                f"{vol} mL. What is the density of the object?")
        wrong = [mass * vol, mass + vol, abs(mass - vol), vol / mass, rho * 10]
        dis = []
        for w in wrong:
            s = f"{fmt(round(w, 2))} g/cm³"
            if s != f"{fmt(round(rho, 2))} g/cm³" and s not in dis:
                dis.append(s)
        items.append((stem, f"{fmt(round(rho, 2))} g/cm³", dis[:4]))
    for k, (intro, rec_name, dom_name, letter) in enumerate(PUNNETT):
        D, r = letter, letter.lower()
        p1, p2, ans = PUNNETT_CROSSES[k]
        p1, p2 = p1.format(D=D, r=r), p2.format(D=D, r=r)
        q = (intro.format(D=D, r=r) + f" If a {p1} parent is crossed with a {p2} parent, what percentage of the "
             f"offspring are expected to show the {rec_name} trait?")
        if k == 3:
            q = (intro.format(D=D, r=r) + f" Two {p1} plants are crossed (an {p1} × {p2} cross). What percentage "
                 f"of the offspring should have {dom_name} seeds?")
        items.append((q, ans, [p for p in PERCENTS if p != ans]))
    for ci, chain in enumerate(CHAINS):
        for ri, (pos, role_q) in enumerate(CHAIN_ROLES):
            if (ci + ri) % 3 == 2:
                continue  # two roles per chain
            q = f"Look at this food chain: {chain_text(chain)}. {role_q}"
            correct = chain[pos]
            items.append((q, correct, [x for x in chain if x != correct]))
    for a, b in [(120, 15), (250, 30)]:
        q = (f"A student puts {a} g of vinegar and {b} g of baking soda into a plastic bag and seals it. Bubbles form "
             "and the bag puffs up. What is the total mass of the sealed bag's contents after the reaction?")
        items.append((q, f"{a + b} g", [f"{a} g", f"{b} g", f"{a - b} g", f"{a + b + 10} g"]))
    items.append(("A 200 g block of ice melts completely inside a closed jar. What is the mass of the liquid water in "
                  "the jar?", "200 g", ["100 g", "180 g", "220 g", "400 g"]))
    items.append(("Ana stirs 25 g of sugar into 300 g of water until the sugar disappears. What is the mass of the "
                  "sugar water?", "325 g", ["300 g", "275 g", "25 g", "12 g"]))
    temps = [(6, 21, "6:00 a.m.", "2:00 p.m."), (-4, 9, "dawn", "noon"), (12, 30, "8:00 a.m.", "3:00 p.m."),
             (3, 17, "7:00 a.m.", "1:00 p.m.")]
    for t1, t2, h1, h2 in temps:
        s1 = f"−{-t1}" if t1 < 0 else str(t1)
        q = (f"The temperature at {h1} was {s1} °C. By {h2} it was {t2} °C. By how many degrees Celsius did the "
             "temperature rise?")
        ans = t2 - t1
        dis = [t1 + t2, t2, abs(t1), ans + 5, ans - 3]
        dis = [f"{x} °C" for x in dict.fromkeys(x for x in dis if x != ans)][:4]
        items.append((q, f"{ans} °C", dis))
    return items


# --------------------------------------------------------------------------------------------------------------
# Layouts, ids, rows.
# --------------------------------------------------------------------------------------------------------------
LETTERS = "ABCDE"
# (label kind, n choices) -> count, per file
LAYOUTS = {
    ("ARC-Easy", "test"): {("L", 4): 100, ("L", 3): 8, ("L", 5): 8, ("D", 4): 8, ("D", 3): 4},
    ("ARC-Easy", "train"): {("L", 4): 7, ("L", 3): 1, ("L", 5): 1, ("D", 4): 2, ("D", 3): 1},
    ("ARC-Challenge", "test"): {("L", 4): 58, ("L", 3): 6, ("L", 5): 6, ("D", 4): 6, ("D", 3): 4},
    ("ARC-Challenge", "train"): {("L", 4): 7, ("L", 3): 1, ("L", 5): 1, ("D", 4): 2, ("D", 3): 1},
}


def make_id(rng, digit_labels):
    y, g, n = rng.randint(1998, 2016), rng.choice([4, 5, 8]), rng.randint(1, 45)
    if digit_labels:
        return f"NYSEDREGENTS_{rng.choice(range(2004, 2016))}_{rng.choice([4, 8])}_{n}"
    r = rng.random()
    if r < 0.30:
        return f"Mercury_{rng.randint(7000000, 7299999)}"
    if r < 0.45:
        return f"Mercury_SC_{rng.randint(400000, 417999)}"
    if r < 0.50:
        return f"Mercury_{rng.randint(400000, 417999)}"
    if r < 0.52:
        return f"Mercury_LBS{rng.randint(10000, 11099)}"
    style = rng.choice(["MCAS_{y}_{g}_{n}", "ACTAAP_{y}_{g}_{n}", "TIMSS_{y}_{g}_pg{n}", "MDSA_{y}_{g}_{n}",
                        "VASoL_{y}_{g}_{n}", "MEA_{y}_{g}_{n}", "TAKS_{y}_{g}_{n}", "NCEOGA_{y}_{g}_{n}",
                        "OHAT_{y}_{g}_{n}", "AKDE&ED_{y}_{g}_{n}", "LEAP__{g}_{big}", "AIMS_{y}_{g}_{n}",
                        "MSA_{y}_{g}_{n}", "CSZ_{y}_{g}_CSZ{big}", "WASL_{y}_{g}_{n}", "NYSEDREGENTS_{y}_{g}_{n}"])
    return style.format(y=y, g=g, n=n, big=rng.randint(10000, 30999))


def build(dataset, pool, rng, used_ids):
    out = {}
    order = pool[:]
    rng.shuffle(order)
    n_train = sum(LAYOUTS[(dataset, "train")].values())
    splits = {"train": order[:n_train], "test": order[n_train:]}
    for split, items in splits.items():
        layouts = []
        for (kind, n), count in LAYOUTS[(dataset, split)].items():
            start = rng.randrange(n)
            if count < n:
                start = n - count  # too few rows to cycle through every slot: make sure the last one is used
            layouts += [(kind, n, (start + i) % n) for i in range(count)]  # gold positions cycle through all slots
        assert len(layouts) == len(items), (dataset, split, len(layouts), len(items))
        rng.shuffle(layouts)
        rows = []
        for (q, correct, dis), (kind, n, gold) in zip(items, layouts):
            assert len(dis) >= 4 and correct not in dis and len(set(dis)) == len(dis), q
            texts = rng.sample(dis, n - 1)
            texts.insert(gold, correct)
            labels = [str(i + 1) for i in range(n)] if kind == "D" else list(LETTERS[:n])
            while True:
                rid = make_id(rng, kind == "D")
                if rid not in used_ids:
                    used_ids.add(rid)
                    break
            rows.append({"id": rid, "question": q, "choices": {"text": texts, "label": labels},
                         "answerKey": labels[gold]})
        out[split] = rows
    return out


def main():
    rng = random.Random(SEED)
    easy = EASY + template_easy(rng)
    chal = CHALLENGE + template_challenge(rng)
    questions = [q for q, _, _ in easy + chal]
    assert len(set(questions)) == len(questions), "duplicate question text"
    used = set()
    for dataset, pool in [("ARC-Easy", easy), ("ARC-Challenge", chal)]:
        for split, rows in build(dataset, pool, rng, used).items():
            path = HERE / dataset / f"{split}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "w", encoding="utf-8", newline="\n") as f:
                for row in rows:
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
            print(path.relative_to(HERE), len(rows))


if __name__ == "__main__":
    main()
