"""The registry: every benchmark NanoEval knows, by its `task:` name. Adding one is one file and one line here
(docs/ARCHITECTURE.md, "Add a benchmark")."""
from __future__ import annotations

from nanoeval.benchmark import Benchmark
from nanoeval.benchmarks import (arc, boolq, commonsense_qa, gsm8k, hellaswag, mmlu, mmmu_pro, openbookqa, piqa,
                                 social_iqa, winogrande)

BENCHMARKS: dict[str, Benchmark] = {
    "mmlu": mmlu.BENCHMARK,
    "hellaswag": hellaswag.BENCHMARK,
    "mmmu_pro": mmmu_pro.BENCHMARK,
    "arc": arc.BENCHMARK,
    "piqa": piqa.BENCHMARK,
    "winogrande": winogrande.BENCHMARK,
    "commonsense_qa": commonsense_qa.BENCHMARK,
    "openbookqa": openbookqa.BENCHMARK,
    "social_iqa": social_iqa.BENCHMARK,
    "boolq": boolq.BENCHMARK,
    "gsm8k": gsm8k.BENCHMARK,
}
