"""Social IQa: one case per row shard. The whole recipe: nanoeval/benchmarks/social_iqa.py."""
from nanoeval.benchmarks.social_iqa import BENCHMARK  # noqa: F401  (the plugin parametrizes `case` from it)


def test_social_iqa(case, engine):
    case.run(engine)
