"""Writes validation.jsonl and train.jsonl: our own HellaSwag-style rows in the exact Rowan/hellaswag schema.

Seeded and deterministic: `python tests/data/hellaswag/make_hellaswag.py` rewrites the same files. The text is
composed from hand-written fragments, with the hard cases of the real data: ` [title]`, `[header]` and `[step]`
tags (also at the end of an ending), an empty or lower-case `ctx_b`, double spaces, non-ASCII text, and endings of
very different lengths. Context about 40-80 tokens, endings about 5-60 tokens.

No length tell: the gold ending's rank by (preprocessed) length is spread evenly over the four ranks, so "pick the
longest ending" and "pick the shortest ending" each score exactly 0.25; acc_norm then measures the model, not the
fixture (tests/test_hellaswag.py checks it).
"""
import json
import random
from pathlib import Path

from nanoeval.prompts import hellaswag_preprocess

ACTIVITIES = {
    "Baking cookies": ("a young man in an apron", "the kitchen counter", "cracks two eggs into a glass bowl",
                       "stirs the flour, sugar and butter together with a wooden spoon"),
    "Washing a car": ("a woman in rubber boots", "the driveway", "fills a bucket with warm soapy water",
                      "scrubs the hood of the red car with a large yellow sponge"),
    "Playing the violin": ("a girl with a ponytail", "a small stage", "lifts the violin to her chin",
                           "draws the bow slowly across the strings while the audience listens"),
    "Making a smoothie": ("a man in a grey t-shirt", "a bright kitchen", "drops sliced bananas into a blender",
                          "adds a handful of frozen berries and pours in some milk"),
    "Painting a fence": ("two teenagers", "the back garden", "open a can of white paint",
                         "dip wide brushes into the paint and begin at the corner post"),
    "Ice fishing": ("an older man in a thick parka", "a frozen lake", "drills a round hole through the ice",
                    "lowers a thin line with a small silver lure into the dark water"),
    "Skateboarding": ("a boy in a red helmet", "an empty parking lot", "pushes off with his left foot",
                      "crouches low as he rolls toward a small wooden ramp"),
    "Planting flowers": ("a woman wearing gardening gloves", "a raised bed", "digs a shallow hole with a trowel",
                         "loosens the roots of a purple pansy before setting it into the soil"),
    "Café au lait": ("a barista named Zoë", "a crowded café", "steams a small jug of milk",
                     "pours the hot coffee into a wide cup while the milk foams"),
    "Tying a tie": ("a man in a white shirt", "front of a hallway mirror", "drapes a blue tie around his collar",
                    "crosses the wide end over the narrow end and pulls it up through the loop"),
}
GOOD = ["carefully {v} and then steps back to look at the result with a satisfied smile",
        "{v}, checking every few seconds that nothing has gone wrong along the way",
        "slowly {v} while explaining each step to the camera in a calm and friendly voice",
        "{v} one more time before finishing and cleaning up the area"]
BAD = ["suddenly jumps into a swimming pool full of green jelly and starts to sing opera",
       "throws everything out of the window and walks away laughing",
       "turns into a small cloud and floats over the rooftops toward the distant mountains while a marching band "
       "plays loudly below and several pigeons follow close behind",
       "eats the entire table",
       "begins to read a long newspaper article about tax law aloud to a confused cat",
       "puts on a space suit and calmly counts backwards from one hundred in Portuguese",
       "falls asleep",
       "is shown in a completely different city riding a camel across a busy bridge at night",
       "sneezes",
       "waves at a dog",
       "starts to cry for no reason",
       "drops everything on the floor",
       "takes off both shoes, places them carefully on the roof of a parked bus, climbs a ladder to follow them, and "
       "then delivers a long speech about the history of umbrellas to a crowd of puzzled tourists",
       "leaves the room, returns wearing a wizard costume made of aluminium foil, and starts juggling three "
       "watermelons while a small orchestra in the corner plays the same four notes over and over again",
       "pulls a live goose out of a paper bag, introduces it to the audience as the new head chef, and lets it "
       "inspect every cupboard while the lights flicker on and off in a slow and steady rhythm",
       "announces that the rest of the video will be narrated by a talking houseplant, which then reads out the "
       "complete terms and conditions of a mobile phone contract in a deep and solemn voice",
       "climbs into the washing machine, closes the door from the inside and waves at the camera as the drum "
       "slowly begins to turn, filling the whole kitchen with bubbles that float out through the open window"]
TAILS = ["", "", "", " [title]", " [step]", " [header] Tips", "  and nods", " — très bien", " [substeps]"]


def row(rng, i, split, rank):
    """A row whose gold ending has `rank` other endings shorter than it (0: shortest, 3: longest)."""
    label_text, (who, where, act1, act2) = rng.choice(sorted(ACTIVITIES.items()))
    intro = rng.choice([f"[header] How to do it well [title] {who.capitalize()} is standing in {where}.",
                        f"{who.capitalize()} is standing in {where} and smiles at the camera.",
                        f"We see {who} in {where}.  The camera zooms in slowly on the scene."])
    ctx_a = f"{intro} {who.capitalize()} {act1} and looks around for a moment."
    kind = i % 5
    if kind == 0:
        ctx_b = ""  # empty ctx_b: the context keeps a trailing space before preprocessing
    elif kind == 1:
        ctx_b = f"then {who} {act2}"  # lower-case ctx_b
    elif kind == 2:
        ctx_b = f"The {who.split()[-1]} {act2.upper()}"  # capitalize() lower-cases the rest
    else:
        ctx_b = f"{who.capitalize()} {act2}"
    gold = rng.randrange(4)
    good = rng.choice(GOOD).format(v=act2) + rng.choice(TAILS)
    size = len(hellaswag_preprocess(good))
    bad = [b + rng.choice(TAILS) for b in BAD]
    shorter = [b for b in bad if len(hellaswag_preprocess(b)) < size]
    longer = [b for b in bad if len(hellaswag_preprocess(b)) > size]
    others = rng.sample(shorter, rank) + rng.sample(longer, 3 - rank)
    rng.shuffle(others)
    endings = others[:gold] + [good] + others[gold:]
    return {"ind": 10000 * (split == "train") + 3 * i + 7, "activity_label": label_text, "ctx_a": ctx_a,
            "ctx_b": ctx_b, "ctx": (ctx_a + " " + ctx_b).strip(), "endings": endings,
            "source_id": f"nanoeval~{label_text.split()[0].lower()}_{i:04d}", "split": split,
            "split_type": "indomain" if i % 3 else "zeroshot", "label": str(gold)}


def main():
    here = Path(__file__).parent
    for split, n, seed in [("validation", 240, 0), ("train", 40, 1)]:
        rng = random.Random(seed)
        ranks = []
        for _ in range(0, n, 4):  # each block of 4 rows has the gold ending at each length rank once
            block = [0, 1, 2, 3]
            rng.shuffle(block)
            ranks += block
        with open(here / f"{split}.jsonl", "w", encoding="utf-8") as f:
            for i in range(n):
                f.write(json.dumps(row(rng, i, split, ranks[i]), ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
