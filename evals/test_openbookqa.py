"""OpenBookQA: one case per row shard. The whole recipe: nanoeval/benchmarks/openbookqa.py."""
from nanoeval.benchmarks.openbookqa import BENCHMARK  # noqa: F401  (the plugin parametrizes `case` from it)


def test_openbookqa(case, engine):
    case.run(engine)
