"""MMLU: one case per subject. The whole recipe and its reference numbers: nanoeval/benchmarks/mmlu.py."""
from nanoeval.benchmarks.mmlu import BENCHMARK  # noqa: F401  (the plugin parametrizes `case` from it)


def test_mmlu(case, engine):
    case.run(engine)
