"""BoolQ: one case per row shard. The whole recipe: nanoeval/benchmarks/boolq.py."""
from nanoeval.benchmarks.boolq import BENCHMARK  # noqa: F401  (the plugin parametrizes `case` from it)


def test_boolq(case, engine):
    case.run(engine)
