"""WinoGrande: one case per row shard. The whole recipe: nanoeval/benchmarks/winogrande.py."""
from nanoeval.benchmarks.winogrande import BENCHMARK  # noqa: F401  (the plugin parametrizes `case` from it)


def test_winogrande(case, engine):
    case.run(engine)
