"""Writes tests/data/gsm8k/{test,train}.jsonl (16 + 12 rows) in the hub schema of `openai/gsm8k`, config `main`:
{"question": str, "answer": "reasoning with <<expr=value>> calculator annotations, one step a line\\n#### N"}.

Every row is our own hand-written problem (never copied from the real dataset). `python tests/data/gsm8k/make_gsm8k.py`
rewrites the same bytes, after checking each row: every annotation's expression evaluates to its value, and the
value written after it is that value. No tells: the final answer is not a number of the question, and the answers
vary in size and form (a negative, decimals, four digits). Awkward on purpose, as the real rows are: a curly
apostrophe, a double space, thousands written "1,250" in the question, "$" before annotated amounts.
"""
import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent

TRAIN = [
    ("A baker fills 7 trays with 12 rolls each. She sells 59 rolls in the morning. How many rolls are left?",
     "She baked 7 * 12 = <<7*12=84>>84 rolls.\nAfter the morning she has 84 - 59 = <<84-59=25>>25 rolls left.\n"
     "#### 25"),
    ("Marco saves $15 every week. How many weeks does he need to save to buy a bike that costs $180?",
     "He needs 180 / 15 = <<180/15=12>>12 weeks.\n#### 12"),
    ("A library had 1,250 books. It bought 340 more and gave away 95 old ones. How many books does the library have "
     "now?",
     "After buying it had 1250 + 340 = <<1250+340=1590>>1590 books.\nAfter giving some away it had 1590 - 95 = "
     "<<1590-95=1495>>1495 books.\n#### 1495"),
    ("Tina runs 3 miles on each weekday and 6 miles on each day of the weekend. How many miles does she run in a "
     "week?",
     "On weekdays she runs 5 * 3 = <<5*3=15>>15 miles.\nOn the weekend she runs 2 * 6 = <<2*6=12>>12 miles.\nIn "
     "total she runs 15 + 12 = <<15+12=27>>27 miles.\n#### 27"),
    ("A farmer’s orchard has 8 rows of apple trees with 14 trees in each row. Each tree gives 20 apples. How many "
     "apples does the orchard give?",
     "There are 8 * 14 = <<8*14=112>>112 trees.\nThey give 112 * 20 = <<112*20=2240>>2240 apples.\n#### 2240"),
    ("A bus carries 42 people. At the first stop 15 people get off and 9 get on. At the second stop half of the "
     "people get off. How many people are left on the bus?",
     "After the first stop there are 42 - 15 + 9 = <<42-15+9=36>>36 people.\nHalf of them get off, so 36 / 2 = "
     "<<36/2=18>>18 people are left.\n#### 18"),
    ("Priya reads 24 pages a day. Her book has 312 pages. How many days will it take her to finish it?",
     "It takes her 312 / 24 = <<312/24=13>>13 days.\n#### 13"),
    ("A box holds 6 cans of paint. A painter needs 45 cans. How many boxes must he buy?",
     "He needs 45 / 6 = <<45/6=7.5>>7.5 boxes, so he must buy 8 boxes.\n#### 8"),
    ("Lena is 4 years older than her brother. In 6 years their ages will add up to 40. How old is Lena now?",
     "Now their ages add up to 40 - 6 - 6 = <<40-6-6=28>>28.\nHer brother is (28 - 4) / 2 = <<(28-4)/2=12>>12 years "
     "old.\nLena is 12 + 4 = <<12+4=16>>16 years old.\n#### 16"),
    ("A café sold 128 cups of coffee on Monday and 25% more on Tuesday. How many cups did it sell on Tuesday?",
     "25% of 128 is 128 * 0.25 = <<128*0.25=32>>32 cups.\nOn Tuesday it sold 128 + 32 = <<128+32=160>>160 cups.\n"
     "#### 160"),
    ("Three friends share a pizza bill of $54 equally and each adds a $4 tip. How much does each friend pay?",
     "Each pays 54 / 3 = $<<54/3=18>>18 for the pizza.\nWith the tip each pays 18 + 4 = $<<18+4=22>>22.\n#### 22"),
    ("Jamal bought 3 notebooks for $2 each and a pen for $3. He paid with a $20 bill. How much change did he get?",
     "The notebooks cost 3 * 2 = $<<3*2=6>>6.\nHe spent 6 + 3 = $<<6+3=9>>9 in all.\nHis change is 20 - 9 = "
     "$<<20-9=11>>11.\n#### 11"),
]

TEST = [
    ("Rosa’s hens lay 18 eggs a day. She uses 5 for baking and sells the rest for $0.50 each. How much money does "
     "she make in a week?",
     "She sells 18 - 5 = <<18-5=13>>13 eggs a day.\nShe makes 13 * 0.50 = $<<13*0.5=6.5>>6.50 a day.\nIn a week "
     "she makes 6.50 * 7 = $<<6.5*7=45.5>>45.50.\n#### 45.5"),
    ("A school orders 24 boxes of pencils with 36 pencils in each box. How many pencils does it order?",
     "It orders 24 * 36 = <<24*36=864>>864 pencils.\n#### 864"),
    ("A train travels 2,400 kilometers in 3 days, covering the same distance each day. How many kilometers does it "
     "travel in one day?",
     "It travels 2400 / 3 = <<2400/3=800>>800 kilometers a day.\n#### 800"),
    ("The temperature was 7 degrees at noon and fell by 12 degrees by midnight. What was the temperature at "
     "midnight?",
     "It was 7 - 12 = <<7-12=-5>>-5 degrees.\n#### -5"),
    ("Omar had 150 marbles. He gave 1/3 of them to his sister and 20 to his friend. How many marbles does he have "
     "left?",
     "He gave his sister 150 / 3 = <<150/3=50>>50 marbles.\nHe has 150 - 50 - 20 = <<150-50-20=80>>80 marbles "
     "left.\n#### 80"),
    ("A car park has 5 levels with 64 spaces on each level.  On Saturday 287 spaces were taken. How many spaces were "
     "free?",
     "There are 5 * 64 = <<5*64=320>>320 spaces.\nSo 320 - 287 = <<320-287=33>>33 spaces were free.\n#### 33"),
    ("Nadia earns $18 an hour and works 35 hours a week. How much does she earn in 4 weeks?",
     "In a week she earns 18 * 35 = $<<18*35=630>>630.\nIn 4 weeks she earns 630 * 4 = $<<630*4=2520>>2520.\n"
     "#### 2520"),
    ("A recipe needs 3 cups of flour for 12 cookies. How many cups of flour are needed for 60 cookies?",
     "60 cookies are 60 / 12 = <<60/12=5>>5 batches.\nThey need 5 * 3 = <<5*3=15>>15 cups of flour.\n#### 15"),
    ("Ben is twice as old as Carla, and Carla is 3 years younger than Dev. Dev is 11. How old is Ben?",
     "Carla is 11 - 3 = <<11-3=8>>8 years old.\nBen is 8 * 2 = <<8*2=16>>16 years old.\n#### 16"),
    ("A tank holds 1,000 liters of water. A pump removes 45 liters a minute for 12 minutes. How many liters are left "
     "in the tank?",
     "The pump removes 45 * 12 = <<45*12=540>>540 liters.\nThere are 1000 - 540 = <<1000-540=460>>460 liters left."
     "\n#### 460"),
    ("Each of 9 teams has 11 players and 2 coaches. How many people are on the teams altogether?",
     "Each team has 11 + 2 = <<11+2=13>>13 people.\nAltogether there are 9 * 13 = <<9*13=117>>117 people.\n#### 117"),
    ("A shop sells a jacket for $80. During a sale the price drops by 15%. What is the sale price?",
     "The discount is 80 * 0.15 = $<<80*0.15=12>>12.\nThe sale price is 80 - 12 = $<<80-12=68>>68.\n#### 68"),
    ("Chen walked 2.5 kilometers on Monday, 3.75 kilometers on Tuesday and 4 kilometers on Wednesday. How far did he "
     "walk in those three days?",
     "He walked 2.5 + 3.75 + 4 = <<2.5+3.75+4=10.25>>10.25 kilometers.\n#### 10.25"),
    ("A factory makes 1,350 toys a day and packs them in boxes of 25. How many boxes does it fill in 6 days?",
     "It fills 1350 / 25 = <<1350/25=54>>54 boxes a day.\nIn 6 days it fills 54 * 6 = <<54*6=324>>324 boxes.\n"
     "#### 324"),
    ("Maya had 40 stickers. She gave away 12, then bought 3 packs of 8 stickers. How many stickers does she have now?",
     "After giving some away she had 40 - 12 = <<40-12=28>>28 stickers.\nShe bought 3 * 8 = <<3*8=24>>24 stickers."
     "\nNow she has 28 + 24 = <<28+24=52>>52 stickers.\n#### 52"),
    ("A garden is 12 meters long and 9 meters wide. Fencing costs $7 per meter. How much does it cost to fence the "
     "whole garden?",
     "The perimeter is 2 * (12 + 9) = <<2*(12+9)=42>>42 meters.\nThe fence costs 42 * 7 = $<<42*7=294>>294.\n"
     "#### 294"),
]


def check(question: str, answer: str) -> None:
    for expr, value, after in re.findall(r"<<([^=>]+)=([^>]+)>>(-?[0-9]+(?:\.[0-9]+)?)", answer):
        assert abs(eval(expr) - float(value)) < 1e-9, (expr, value)  # our own literals only
        assert float(after) == float(value), (value, after)
    final = answer.rsplit("\n#### ", 1)[1]
    assert re.fullmatch(r"-?[0-9.]+", final) and final not in re.findall(r"[0-9][0-9,.]*", question), question


def write(name: str, rows: list[tuple[str, str]]) -> None:
    for q, a in rows:
        check(q, a)
    (HERE / f"{name}.jsonl").write_text("".join(json.dumps({"question": q, "answer": a}, ensure_ascii=False) + "\n"
                                                for q, a in rows), encoding="utf-8")


if __name__ == "__main__":
    write("train", TRAIN)
    write("test", TEST)
