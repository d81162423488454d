"""CommonsenseQA: one case per row shard. The whole recipe: nanoeval/benchmarks/commonsense_qa.py."""
from nanoeval.benchmarks.commonsense_qa import BENCHMARK  # noqa: F401  (the plugin parametrizes `case` from it)


def test_commonsense_qa(case, engine):
    case.run(engine)
