"""The registry: every benchmark NanoEval knows, by its `task:` name. Adding one is one file and one line here
(docs/ARCHITECTURE.md, "Add a benchmark")."""
from __future__ import annotations

from nanoeval.benchmark import Benchmark
from nanoeval.benchmarks import arc, hellaswag, mmlu, mmmu_pro

BENCHMARKS: dict[str, Benchmark] = {
    "mmlu": mmlu.BENCHMARK,
    "hellaswag": hellaswag.BENCHMARK,
    "mmmu_pro": mmmu_pro.BENCHMARK,
    "arc": arc.BENCHMARK,
}
