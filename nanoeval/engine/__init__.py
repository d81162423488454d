"""The model engine (this package: requests.py, loading.py, batching.py, loglik.py, generation.py): load a model once per process, score log-likelihood requests, generate greedily.

Benchmarks hand over requests and never batch or pad. A log-likelihood request is one context with several
continuations, or several contexts sharing one continuation (WinoGrande): the tokens its choices' contexts share
are the unit's context, the rest of each choice its branch. The fast path (each part can be switched off in `engine:`, and is tested equal to the naive path):
  * share_context: the context goes through the model once; each continuation's tokens follow it in the same row
    as a branch that sees the context and itself only (a tree attention mask). MMLU's " A".." D" are one token
    each, so a question is just its context and the four scores are read at its last position;
  * log-probabilities only at the positions whose next token is scored, in fp32, summed in fp64;
  * packing: rows are as wide as the longest sequence of the batch and shorter ones share rows (no padding
    compute); batches are length-sorted under a token budget (CUDA out-of-memory halves the budget). On a GPU,
    units without branches are one per row under the plain causal mask instead (SDPA's flash kernel);
  * prefix_cache: a few-shot prefix shared by a subject's questions is computed once, its key/value cache reused;
    on a CPU, short prefixes (0-shot MMLU's header) of all subjects are computed together and each packed row
    attends to its own units' cached prefixes (on a GPU, rows compute them);
  * the naive path (context + continuation as one right-padded sequence each) is the reference; it also takes
    every request that reaches a sliding attention window (Mistral, Gemma 2/3), which the fast paths' own
    masks would not narrow.
Tokenization follows lm-evaluation-harness: context and continuation are tokenized jointly and the continuation
is the tail; trailing spaces of the context move to the continuation; a text that already starts with the BOS token
(a chat template that writes it) gets no second one; over-long inputs are left-truncated (counted).
Generation (generation.py) is greedy on a left-padded batch: each row stops at its first stop string (found in the
decoded text) or end-of-sequence token and leaves the batch; the response is cut before the stop. Caches are
preallocated (a step writes in place), and a generative task's gold continuation is scored in its generation's
own prefill (`generate_scored`).
"""
from __future__ import annotations

import gc
from pathlib import Path

from nanoeval.config import EngineConfig, ModelConfig
from nanoeval.engine.base import EngineBase
from nanoeval.engine.batching import Batcher
from nanoeval.engine.generation import generate
from nanoeval.engine.loading import Loaded, convert_gguf, load_model, model_location, seed_everything
from nanoeval.engine.loglik import LogLikelihoods
from nanoeval.engine.requests import GenRequest, LLRequest

__all__ = ["Engine", "GenRequest", "LLRequest", "convert_gguf", "model_location", "seed_everything"]


class Engine(EngineBase):
    """A loaded model and what scores with it: tokenization (here), log-likelihoods (loglik.py), generation
    (generation.py), batches under a token budget (batching.py). One per process; benchmarks only hand it requests."""

    def __init__(self, cfg: ModelConfig, engine: EngineConfig, root: Path, commit: str | None = None,
                 loaded: Loaded | None = None):
        """Loads `cfg`'s model, or scores with `loaded` (loading.in_memory: a model already in memory)."""
        import torch

        self.cfg, self.settings = cfg, engine
        if engine.threads:
            torch.set_num_threads(engine.threads)
        loaded = loaded or load_model(cfg, root, commit)
        self.model, self.tokenizer, self.processor = loaded.model, loaded.tokenizer, loaded.processor
        self.kind, self.device, self.max_length, self.meta = loaded.kind, loaded.device, loaded.max_length, loaded.meta
        self.commit, self.load_seconds = loaded.meta["commit"], loaded.meta["load_seconds"]
        # Packing needs a custom attention mask: SDPA or eager attention (flash attention takes none).
        self.attn_impl = loaded.attn_impl
        self.packing = engine.packing and self.attn_impl in ("sdpa", "eager")
        self.plain = loaded.plain  # a module whose forward(ids) gives logits: only the naive path (loglik.py)
        # a training loop's model (in memory) is scored under no_grad, not inference_mode: a cache a module fills
        # lazily while scoring (rotary tables) must stay usable by the next training step's autograd
        self.no_grad = torch.no_grad if loaded.meta.get("backend") == "in_memory" else torch.inference_mode
        # Branchless units (a context scored at its last position: MMLU's one-token letters) need no mask unpacked,
        # so on a GPU they are not packed: SDPA's flash kernel (plain causal mask) beats the little padding that
        # packing saves in length-sorted batches. On a CPU packing measured ~5 % faster (benchmarks/RESULTS.md).
        self.pack_branchless = self.packing and not self.device.startswith("cuda")
        self.batcher = Batcher(engine.token_budget or (32768 if self.device.startswith("cuda") else 1024),
                               engine.batch_size)
        # per-call counters; the runner takes and resets them after each chunk of a case
        self.counts = {"truncated_prompts": 0, "hit_max_new_tokens": 0}
        self.noted: list[dict[str, int]] | None = None  # the same per request, while the runner scores a chunk
        self._init_ahead()
        self.lookahead = engine.lookahead if engine.lookahead is not None else (
            16384 if self.device.startswith("cuda") else 256)  # examples; lookahead.py
        self.prefix_caches: dict[tuple, object] = {}  # few-shot prefix -> its key/value cache (one per subject)
        self._loglikelihoods = LogLikelihoods(self)

    def close(self) -> None:
        import torch

        self.ahead.clear()
        self.prefix_caches.clear()
        del self.model
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def generate(self, requests: list[GenRequest], max_new_tokens: int) -> list[str]:
        """Greedy decoding (generation.py): each response is the text before the request's earliest stop string
        (`until`) or end-of-sequence token, at most max_new_tokens tokens; hit_max_new_tokens counts those cut."""
        return generate(self, requests, max_new_tokens)[0]

    def generate_scored(self, requests: list[GenRequest], max_new_tokens: int,
                        gold: list[LLRequest]) -> tuple[list[str], list[list[float]]]:
        """`generate`, and the log-likelihoods of `gold` (one request per generation, over the same prompt): each
        scored in its generation's own prefill where the tokens allow (generation.py), the rest as
        `loglikelihoods` scores them. Counted as `generate`, then the gold requests, each in order."""
        responses, fused = generate(self, requests, max_new_tokens, gold)
        rest = [i for i in range(len(gold)) if i not in fused]
        got = {i: ([ll], False) for i, ll in fused.items()}
        if rest:
            got.update(zip(rest, zip(*self._loglikelihoods([gold[i] for i in rest]))))
        self.count([{"truncated_prompts": int(got[i][1])} for i in range(len(gold))])
        return responses, [got[i][0] for i in range(len(gold))]
