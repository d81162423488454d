"""PIQA: one case per row shard. The whole recipe: nanoeval/benchmarks/piqa.py."""
from nanoeval.benchmarks.piqa import BENCHMARK  # noqa: F401  (the plugin parametrizes `case` from it)


def test_piqa(case, engine):
    case.run(engine)
