"""Writes standard10.parquet and vision.parquet: our own MMMU-Pro-style rows in the exact MMMU/MMMU_Pro schema.

Seeded and deterministic: `python tests/data/mmmu_pro/make_mmmu_pro.py`. Images are drawn here (bar charts,
shapes, and for the vision setting a rendered screenshot of question and options). Hard cases: several images
per row, `<image 2>` before `<image 1>`, a tag inside an option, a 12-option row, a 2-option row, and the real
data's quirk of a row whose options are a nested list (its gold letter is then out of range).
"""
import io
import random
from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).parent
COLORS = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3"]


def png(img: Image.Image) -> dict:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return {"bytes": buf.getvalue(), "path": None}


def chart(rng: random.Random, n_bars: int, size=(64, 48)) -> Image.Image:
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    w = size[0] // (n_bars + 1)
    for i in range(n_bars):
        h = rng.randint(5, size[1] - 4)
        d.rectangle([4 + i * w, size[1] - h, 4 + i * w + w - 2, size[1] - 1], fill=COLORS[i % len(COLORS)])
    return img


def shape(kind: str, color: str) -> Image.Image:
    img = Image.new("RGB", (48, 48), "white")
    d = ImageDraw.Draw(img)
    {"circle": d.ellipse, "square": d.rectangle}.get(kind, d.ellipse)([8, 8, 40, 40], fill=color)
    return img


def screenshot(question: str, options: list) -> Image.Image:
    lines = [question] + [f"{chr(65 + i)}. {o}" for i, o in enumerate(options)]
    img = Image.new("RGB", (320, 14 * len(lines) + 10), "white")
    d = ImageDraw.Draw(img)
    for k, line in enumerate(lines):
        d.text((5, 5 + 14 * k), str(line)[:60], fill="black")
    return img


ROWS = [  # (id, subject, question, options, answer, images: {n: image}, img_type, difficulty)
    ("test_Math_1", "Math", "How many bars are taller than half the height of <image 1>?",
     ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"], "C", {1: "chart3"}, "['Plots and Charts']", "Easy"),
    ("test_Math_2", "Math", "Compare <image 2> with <image 1>. Which chart has more bars?",
     ["The first", "The second", "Both equal", "Neither", "Cannot tell", "The first, by one", "The second, by one",
      "The first, by two", "The second, by two", "None of these"], "B", {1: "chart2", 2: "chart4"},
     "['Plots and Charts']", "Medium"),
    ("test_Math_3", "Math", "Is the statement about <image 1> true?", ["True", "False"], "A", {1: "chart3"},
     "['Plots and Charts']", "Easy"),
    ("test_Art_1", "Art", "Which shape is shown in <image 1>?",
     ["Circle", "Square", "Triangle", "Star", "Hexagon", "Oval", "Line", "Arrow", "Cross", "Heart", "Moon",
      "Diamond"], "A", {1: "circle"}, "['Sketches and Drafts']", "Easy"),
    ("test_Art_2", "Art", "Which option shows the same colour as <image 1>?",
     ["<image 2>", "<image 3>", "Neither", "Both"], "A", {1: "red_sq", 2: "red_circ", 3: "blue_circ"},
     "['Paintings']", "Hard"),
    ("test_Art_3", "Art", "What is the dominant colour of the painting?",
     ["Red", "Green", "Blue", "Yellow", "Black", "White", "Purple", "Orange", "Brown", "Grey"], "C", {},
     "['Paintings']", "Medium"),
    ("validation_Accounting_29", "Accounting", "Which entry balances the ledger in <image 1>?",
     [["Debit cash 100", "Credit revenue 100", "Debit revenue 100"]], "B", {1: "chart2"}, "['Tables']", "Hard"),
    ("test_Accounting_2", "Accounting", "Which quarter in <image 1> has the highest revenue?",
     ["Q1", "Q2", "Q3", "Q4", "Q5", "Q6", "Q7", "Q8", "Q9", "Q10"], "D", {1: "chart4"}, "['Plots and Charts']",
     "Medium"),
    ("test_Accounting_3", "Accounting", "Which statement best describes <image 1> and <image 3>? See also <image 2>.",
     ["Growth", "Decline", "Flat", "Cyclical", "Random", "Seasonal", "Linear", "Exponential", "Logarithmic",
      "Step"], "A", {1: "chart2", 2: "chart3", 3: "chart4"}, "['Plots and Charts']", "Hard"),
]


def main():
    import datasets

    rng = random.Random(0)
    made = {"chart2": lambda: chart(rng, 2), "chart3": lambda: chart(rng, 3), "chart4": lambda: chart(rng, 4),
            "circle": lambda: shape("circle", "black"), "red_sq": lambda: shape("square", "red"),
            "red_circ": lambda: shape("circle", "red"), "blue_circ": lambda: shape("circle", "blue")}
    standard = {k: [] for k in ["id", "question", "options", "explanation", *[f"image_{n}" for n in range(1, 8)],
                                "img_type", "answer", "topic_difficulty", "subject"]}
    vision = {k: [] for k in ["id", "image", "options", "answer", "subject"]}
    for rid, subject, question, options, answer, images, img_type, diff in ROWS:
        for key, value in [("id", rid), ("question", question), ("options", repr(options)), ("explanation", "?"),
                           ("img_type", img_type), ("answer", answer), ("topic_difficulty", diff),
                           ("subject", subject)]:
            standard[key].append(value)
        for n in range(1, 8):
            standard[f"image_{n}"].append(png(made[images[n]]()) if n in images else None)
        for key, value in [("id", rid), ("image", png(screenshot(question, options))), ("options", repr(options)),
                           ("answer", answer), ("subject", subject)]:
            vision[key].append(value)
    image = datasets.Image()
    feats = datasets.Features({k: image if k.startswith("image") else datasets.Value("string") for k in standard})
    datasets.Dataset.from_dict(standard, features=feats).to_parquet(HERE / "standard10.parquet")
    feats = datasets.Features({k: image if k == "image" else datasets.Value("string") for k in vision})
    datasets.Dataset.from_dict(vision, features=feats).to_parquet(HERE / "vision.parquet")


if __name__ == "__main__":
    main()
