"""HellaSwag: one case per row shard. The whole recipe and its reference numbers: nanoeval/benchmarks/hellaswag.py."""
from nanoeval.benchmarks.hellaswag import BENCHMARK  # noqa: F401  (the plugin parametrizes `case` from it)


def test_hellaswag(case, engine):
    case.run(engine)
