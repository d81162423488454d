"""MMMU-Pro: one case per subject. The whole recipe and its reference numbers: nanoeval/benchmarks/mmmu_pro.py."""
from nanoeval.benchmarks.mmmu_pro import BENCHMARK  # noqa: F401  (the plugin parametrizes `case` from it)


def test_mmmu_pro(case, engine):
    case.run(engine)
