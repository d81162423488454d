"""GSM8K: one case per row shard. The whole recipe and its reference numbers: nanoeval/benchmarks/gsm8k.py."""
from nanoeval.benchmarks.gsm8k import BENCHMARK  # noqa: F401  (the plugin parametrizes `case` from it)


def test_gsm8k(case, engine):
    case.run(engine)
