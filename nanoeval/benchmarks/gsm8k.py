"""GSM8K (Cobbe et al., 2021): grade-school math word problems, answered by free generation. One case per shard.

Recipe: lm-evaluation-harness 0.4.13's `gsm8k` task (gsm8k.yaml, version 3.0), character for character:
    prompt   = 5 shots + "Question: {question}\\nAnswer:"       shot = "Question: {question}\\nAnswer: {answer}\\n\\n"
               (answer: the whole solution, "... <<48/2=24>>24 ...\\n#### 72"), drawn from `train` by lm-eval's
               default sampler: random.Random(1234).sample(train, 5) drawn doc after doc in the test split's order
    greedy until "Question:", "</s>", "<|im_end|>" (or EOS), at most 256 new tokens (lm-eval's max_gen_toks)
    strict-match      regex "#### (\\-?[0-9\\.\\,]+)", the first match                    <- headline
    flexible-extract  regex "(-?[$0-9.,]{2,})|(-?[0-9]+)", the last match (group_select -1)
    exact_match with the whole answer: ignore_case, regexes_to_ignore ",", "\\$", "(?s).*#### ", "\\.$" (in that
    order, on both sides), so "#### 1,234." matches an answer ending in "#### 1234"
`scoring.formulation: cot` is lm-eval's `gsm8k_cot` (gsm8k-cot.yaml, 3.0): "Q: {question}\\nA:", its 8 fixed
exemplars in order (first_n), until "Q:", "</s>", "<|im_end|>", strict-match "The answer is (\\-?[0-9\\.\\,]+)."
(first match), the same flexible-extract, the gold the number after "####".
Also per row: the bits per byte of the gold (" " + target) under the same prompt (`bpb`, lower is better).

Test split 1,319 rows (hub `openai/gsm8k`, config `main`; train 7,473). Rows have no id: their number.
Reference numbers: BENCHMARKS.md has none for GSM8K, and none were measured here on the real split (a CPU run of
1,319 generations of up to 256 tokens is hours); published small-model GSM8K numbers come from other recipes
(lighteval's, the model cards') and are not comparable digit for digit. The fixture run in
tests/data/gsm8k/LMEVAL.md compares prompts, responses, extracted answers and exact match with lm-eval per row.
"""
from nanoeval.generative import ExactMatch, Extractor, Generative, Prompt, generative

MATCH = ExactMatch(ignore_case=True, ignore_punctuation=False, regexes_to_ignore=(",", "\\$", "(?s).*#### ", "\\.$"))
FLEXIBLE = Extractor(r"(-?[$0-9.,]{2,})|(-?[0-9]+)", group_select=-1)

# gsm8k-cot.yaml's exemplars, as rows: an answer without "####" is its own target (lm-eval: `target`)
COT_SHOTS = tuple({"question": q, "answer": a} for q, a in [
    ("There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are done, there "
     "will be 21 trees. How many trees did the grove workers plant today?",
     "There are 15 trees originally. Then there were 21 trees after some more were planted. So there must have been "
     "21 - 15 = 6. The answer is 6."),
    ("If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking lot?",
     "There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5. The answer is 5."),
    ("Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have left in total?",
     "Originally, Leah had 32 chocolates. Her sister had 42. So in total they had 32 + 42 = 74. After eating 35, they "
     "had 74 - 35 = 39. The answer is 39."),
    ("Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How many lollipops did Jason "
     "give to Denny?",
     "Jason started with 20 lollipops. Then he had 12 after giving some to Denny. So he gave Denny 20 - 12 = 8. The "
     "answer is 8."),
    ("Shawn has five toys. For Christmas, he got two toys each from his mom and dad. How many toys does he have now?",
     "Shawn started with 5 toys. If he got 2 toys each from his mom and dad, then that is 4 more toys. 5 + 4 = 9. The "
     "answer is 9."),
    ("There were nine computers in the server room. Five more computers were installed each day, from monday to "
     "thursday. How many computers are now in the server room?",
     "There were originally 9 computers. For each of 4 days, 5 more computers were added. So 5 * 4 = 20 computers "
     "were added. 9 + 20 is 29. The answer is 29."),
    ("Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 more. How many golf balls "
     "did he have at the end of wednesday?",
     "Michael started with 58 golf balls. After losing 23 on tuesday, he had 58 - 23 = 35. After losing 2 more, he "
     "had 35 - 2 = 33 golf balls. The answer is 33."),
    ("Olivia has $23. She bought five bagels for $3 each. How much money does she have left?",
     "Olivia had 23 dollars. 5 bagels for 3 dollars each will be 5 x 3 = 15 dollars. So she has 23 - 15 dollars left. "
     "23 - 15 is 8. The answer is 8."),
])

BENCHMARK = generative(Generative(
    name="gsm8k", doc="GSM8K: grade-school math, generated answers (lm-eval's gsm8k and gsm8k_cot; exact match)",
    dataset={"path": "openai/gsm8k", "name": "main", "split": "test", "fewshot_split": "train"},
    columns=("question", "answer"), full_size=1319,
    formulations={
        "standard": Prompt(
            text=lambda row: f"Question: {row['question']}\nAnswer:",
            target=lambda row: row["answer"],
            until=("Question:", "</s>", "<|im_end|>"), num_fewshot=5, match=MATCH, headline="strict-match",
            extractors={"strict-match": Extractor(r"#### (\-?[0-9\.\,]+)"), "flexible-extract": FLEXIBLE},
            template="lm-eval 0.4.13 gsm8k.yaml: 'Question: {question}\\nAnswer:', ' ' + answer"),
        "cot": Prompt(
            text=lambda row: f"Q: {row['question']}\nA:",
            target=lambda row: row["answer"].split("####")[-1].strip(),
            until=("Q:", "</s>", "<|im_end|>"), num_fewshot=8, shots=COT_SHOTS, match=MATCH, headline="strict-match",
            extractors={"strict-match": Extractor(r"The answer is (\-?[0-9\.\,]+)."), "flexible-extract": FLEXIBLE},
            template="lm-eval 0.4.13 gsm8k-cot.yaml: 'Q: {question}\\nA:', ' ' + the number after '####'"),
    }))
