"""The model engine (this package: requests.py, loading.py, batching.py, loglik.py, generation.py): load a model once per process, score log-likelihood requests, generate greedily.

Benchmarks hand over requests and never batch or pad. A log-likelihood request is one context with several
continuations. The fast path (each part can be switched off in `engine:`, and is tested equal to the naive path):
  * share_context: the context goes through the model once; each continuation's tokens follow it in the same row
    as a branch that sees the context and itself only (a tree attention mask). MMLU's " A".." D" are one token
    each, so a question is just its context and the four scores are read at its last position;
  * log-probabilities only at the positions whose next token is scored, in fp32, summed in fp64;
  * packing: rows are as wide as the longest sequence of the batch and shorter ones share rows (no padding
    compute); batches are length-sorted under a token budget (CUDA out-of-memory halves the budget);
  * prefix_cache: a few-shot prefix shared by a subject's questions is computed once, its key/value cache reused;
  * the naive path (context + continuation as one right-padded sequence each) is the reference.
Tokenization follows lm-evaluation-harness: context and continuation are tokenized jointly and the continuation
is the tail; trailing spaces of the context move to the continuation; over-long inputs are left-truncated (counted).
Generation pads on the left.
"""
from __future__ import annotations

import gc
from pathlib import Path

from nanoeval.config import EngineConfig, ModelConfig
from nanoeval.engine.batching import Batcher
from nanoeval.engine.generation import generate
from nanoeval.engine.loading import convert_gguf, load_model, model_location, seed_everything
from nanoeval.engine.loglik import LogLikelihoods
from nanoeval.engine.requests import GenRequest, LLRequest

__all__ = ["Engine", "GenRequest", "LLRequest", "convert_gguf", "model_location", "seed_everything"]


class Engine:
    """A loaded model and what scores with it: tokenization (here), log-likelihoods (loglik.py), generation
    (generation.py), batches under a token budget (batching.py). One per process; benchmarks only hand it requests."""

    def __init__(self, cfg: ModelConfig, engine: EngineConfig, root: Path, commit: str | None = None):
        import torch

        self.cfg, self.settings = cfg, engine
        if engine.threads:
            torch.set_num_threads(engine.threads)
        loaded = load_model(cfg, root, commit)
        self.model, self.tokenizer, self.processor = loaded.model, loaded.tokenizer, loaded.processor
        self.kind, self.device, self.max_length, self.meta = loaded.kind, loaded.device, loaded.max_length, loaded.meta
        self.commit, self.load_seconds = loaded.meta["commit"], loaded.meta["load_seconds"]
        # Packing needs a custom attention mask: SDPA or eager attention (flash attention takes none).
        self.attn_impl = loaded.attn_impl
        self.packing = engine.packing and self.attn_impl in ("sdpa", "eager")
        self.batcher = Batcher(engine.token_budget or (32768 if self.device.startswith("cuda") else 1024),
                               engine.batch_size)
        # per-call counters; the runner takes and resets them after each chunk of a case
        self.counts = {"truncated_prompts": 0, "hit_max_new_tokens": 0}
        self.ahead: dict[tuple, tuple[list[float], bool]] = {}  # prescore(): request -> (scores, truncated)
        self.ahead_used = 0  # requests answered from `ahead` (the runner notes them per case)
        self.lookahead = engine.lookahead if engine.lookahead is not None else (
            16384 if self.device.startswith("cuda") else 256)  # examples; lookahead.py
        self.prefix_caches: dict[tuple, object] = {}  # few-shot prefix -> its key/value cache (one per subject)
        self._loglikelihoods = LogLikelihoods(self)

    def close(self) -> None:
        import torch

        self.ahead.clear()
        del self.model
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # ------------------------------------------------------------------------------------------------ tokenization
    def encode(self, text: str) -> list[int]:
        return self.encode_many([text])[0]

    def encode_many(self, texts: list[str]) -> list[list[int]]:
        """Token ids (one batched call: fast tokenizers work in parallel); special tokens as the tokenizer adds
        them by default, unless model.add_bos_token says."""
        if not texts:
            return []
        if self.cfg.add_bos_token is None:
            return self.tokenizer(texts)["input_ids"]
        ids = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        bos = self.tokenizer.bos_token_id
        return [[bos] + x for x in ids] if self.cfg.add_bos_token and bos is not None else ids

    def encode_request(self, req: LLRequest) -> tuple[list[int], list[list[int]]]:
        return self.encode_requests([req])[0]

    def encode_requests(self, requests: list[LLRequest]) -> list[tuple[list[int], list[list[int]]]]:
        """Context tokens and each continuation's tokens: the tail of the joint tokenization of context and
        continuation. Trailing spaces of the context move to the continuation ("Answer: "+"A" is scored as
        "Answer:"+" A"); an empty context is scored after a single BOS/EOS token, as lm-eval does."""
        ctxs, moved = [], []
        for req in requests:
            ctx = self.prompt_text(GenRequest(req.context))
            n = len(ctx) - len(ctx.rstrip())
            ctxs.append(ctx[:-n] if n else ctx)
            moved.append(ctx[-n:] if n else "")
        ctx_ids = self.encode_many(ctxs)
        wholes = self.encode_many([c + m + k for c, m, req in zip(ctxs, moved, requests) for k in req.continuations])
        conts_alone = self.encode_many([m + k for c, m, req in zip(ctxs, moved, requests) if not c
                                        for k in req.continuations])
        out, w, a = [], 0, 0
        start = [self.tokenizer.bos_token_id or self.tokenizer.eos_token_id]
        for ctx, ids, req in zip(ctxs, ctx_ids, requests):
            k = len(req.continuations)
            if ctx:
                out.append((ids, [x[len(ids):] for x in wholes[w: w + k]]))
            else:
                out.append((start, conts_alone[a: a + k]))
                a += k
            w += k
        return out

    # ------------------------------------------------------------------------------------------------ scoring
    def loglikelihoods(self, requests: list[LLRequest], naive: bool = False) -> list[list[float]]:
        """Summed log-probability of each continuation given its context, per request (loglik.py). Requests
        scored ahead (`prescore`) are answered from what was kept, each once; the rest are scored now."""
        kept = [self.ahead.pop(_key(r), None) if not naive else None for r in requests]
        fresh = iter(zip(*self._loglikelihoods([r for r, k in zip(requests, kept) if k is None], naive)))
        out = []
        for k in kept:
            lls, cut = k if k is not None else next(fresh)
            self.counts["truncated_prompts"] += cut  # counted in the chunk whose records use the scores
            self.ahead_used += k is not None
            out.append(lls)
        return out

    def prescore(self, requests: list[LLRequest]) -> None:
        """Score requests now, across cases, and keep each result until `loglikelihoods` is asked for it: the
        runner hands over the requests of the cases queued on this process, so the batcher sorts them all by
        length together instead of draining after each small case."""
        for r, lls, cut in zip(requests, *self._loglikelihoods(requests)):
            self.ahead[_key(r)] = (lls, cut)

    def generate(self, requests: list[GenRequest], max_new_tokens: int) -> list[str]:
        """Greedy decoding (generation.py)."""
        return generate(self, requests, max_new_tokens)

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def prompt_text(self, req: GenRequest) -> str:
        """One user turn: the text, then one image slot per image (the official MMMU-Pro layout)."""
        chat = self.cfg.chat_template if req.chat is None else req.chat
        if req.images and self.processor is None:
            raise ValueError(f"{self.cfg.path} is a text-only model; this request has {len(req.images)} image(s)")
        if not chat:
            return req.text
        content = [{"type": "text", "text": req.text}] + [{"type": "image"} for _ in req.images]
        messages = [{"role": "user", "content": content if self.processor else req.text}]
        template = self.processor if self.processor is not None else self.tokenizer
        return template.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def _key(req: LLRequest) -> tuple:
    """Everything of a request that decides its scores (the prefix only decides what is cached)."""
    return req.context, tuple(req.continuations)
