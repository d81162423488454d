"""ARC-Easy / ARC-Challenge: one case per row shard. The whole recipe: nanoeval/benchmarks/arc.py."""
from nanoeval.benchmarks.arc import BENCHMARK  # noqa: F401  (the plugin parametrizes `case` from it)


def test_arc(case, engine):
    case.run(engine)
