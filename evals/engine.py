"""The model engine: load a model once per process, score log-likelihood requests, generate greedily.

Benchmarks hand over requests and never batch or pad. A log-likelihood request is one context with several
continuations; the engine picks the cheapest exact path:
  * every continuation is one token (MMLU's " A".." D"): one forward pass over the context, log-probabilities at
    the last position only;
  * otherwise, with `engine.share_context` (HellaSwag's four endings): one forward pass over the contexts, their
    key/value cache reused for the continuations, log-probabilities only at continuation positions;
  * the naive path (context + continuation as one sequence each) is the reference the others are tested against.
Tokenization follows lm-evaluation-harness: context and continuation are tokenized jointly and the continuation
is the tail; trailing spaces of the context move to the continuation; over-long inputs are left-truncated (counted).
Log-softmax is always in fp32; padding is on the right for scoring, on the left for generation.
"""
from __future__ import annotations

import gc
import hashlib
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from evals.config import EngineConfig, ModelConfig
from evals.data import package_dir


@dataclass
class LLRequest:
    context: str
    continuations: list[str]
    prefix: str = ""  # a leading part of `context` shared by many requests (few-shot shots): its KV cache is reused


@dataclass
class GenRequest:
    text: str                                   # the user turn's text
    images: list = field(default_factory=list)  # PIL images, attached after the text in this order
    chat: bool | None = None                    # wrap in the chat template (None: model.chat_template)


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def cache_root() -> Path:
    return Path(os.environ.get("NANOEVAL_CACHE") or Path.home() / ".cache" / "nanoeval")


def model_location(cfg: ModelConfig, root: Path) -> str:
    """A local folder (package-relative, project-relative or absolute) or a hub id."""
    if cfg.package:
        return str(package_dir(cfg.package) / cfg.path)
    local = Path(cfg.path) if Path(cfg.path).is_absolute() else root / cfg.path
    return str(local) if local.exists() else cfg.path


def convert_gguf(folder: str, gguf_file: str) -> Path:
    """De-quantize a GGUF file into a plain HF folder once; later runs load the cached folder in a second."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = Path(folder) / gguf_file
    st = src.stat()
    key = hashlib.sha256(f"{src.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:12]
    out = cache_root() / "gguf" / f"{src.stem}-{key}"
    if (out / "config.json").exists():
        return out
    print(f"nanoeval: converting {src.name} to a plain HF folder (once) -> {out}", flush=True)
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file, dtype=torch.float32)
    model.hf_quantizer = None  # weights are de-quantized already; this lets save_pretrained write them
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp.rename(out)  # atomic: a crash never leaves a half-written cache entry
    except OSError:  # another process won the race
        shutil.rmtree(tmp, ignore_errors=True)
    return out


class Engine:
    def __init__(self, cfg: ModelConfig, engine: EngineConfig, root: Path):
        import torch
        import transformers as tf

        tf.utils.logging.disable_progress_bar()
        tf.utils.logging.set_verbosity_error()
        self.cfg, self.engine = cfg, engine
        if engine.threads:
            torch.set_num_threads(engine.threads)
        if cfg.trust_remote_code:
            print(f"nanoeval: WARNING: trust_remote_code is ON for {cfg.path}: code from the model repository "
                  "will run on this machine", flush=True)
        t0 = time.time()
        location = model_location(cfg, root)
        if cfg.gguf_file:
            location = str(convert_gguf(location, cfg.gguf_file))
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
        common = dict(revision=cfg.revision, trust_remote_code=cfg.trust_remote_code)
        hf_config = tf.AutoConfig.from_pretrained(location, **common)
        kind = cfg.kind
        if kind == "auto":
            kind = "vision_lm" if hasattr(hf_config, "vision_config") else "causal_lm"
        self.kind = kind
        dtype = getattr(torch, cfg.dtype)
        if kind == "vision_lm":
            self.processor = tf.AutoProcessor.from_pretrained(location, **common)
            self.tokenizer = self.processor.tokenizer
            self.model = tf.AutoModelForImageTextToText.from_pretrained(location, dtype=dtype, **common)
        else:
            self.processor = None
            self.tokenizer = tf.AutoTokenizer.from_pretrained(location, **common)
            self.model = tf.AutoModelForCausalLM.from_pretrained(location, dtype=dtype, **common)
        self.model.to(self.device).eval().requires_grad_(False)
        text_cfg = getattr(hf_config, "text_config", None) or hf_config
        self.max_length = cfg.max_length or getattr(text_cfg, "max_position_embeddings", None) or 2048
        self.truncated = 0  # prompts left-truncated to fit max_length
        self.budget = engine.token_budget or (32768 if self.device.startswith("cuda") else 512)
        self.prefix_caches: dict[tuple, object] = {}  # few-shot prefix -> its key/value cache (one per subject)
        self.load_seconds = time.time() - t0
        self.meta = {"id": f"{cfg.package}/{cfg.gguf_file or cfg.path}" if cfg.package else cfg.path, "package": cfg.package, "gguf_file": cfg.gguf_file, "revision": cfg.revision,
                     "dtype": cfg.dtype, "device": self.device, "kind": kind,
                     "architecture": (hf_config.architectures or [type(self.model).__name__])[0],
                     "parameters": sum(p.numel() for p in self.model.parameters()),
                     "max_length": self.max_length, "load_seconds": round(self.load_seconds, 2)}

    def close(self) -> None:
        import torch

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

    # ------------------------------------------------------------------------------------------ log-likelihoods
    def loglikelihoods(self, requests: list[LLRequest], naive: bool = False) -> list[list[float]]:
        """Summed log-probability of each continuation given its context, per request."""
        import torch

        with torch.inference_mode():
            return self._loglikelihoods(requests, naive)

    def _loglikelihoods(self, requests: list[LLRequest], naive: bool) -> list[list[float]]:
        encoded = self.encode_requests(requests)
        out: list[list[float] | None] = [None] * len(requests)
        fast, shared, rest = [], [], []
        for i, (ctx, conts) in enumerate(encoded):
            ok = all(conts) and len(ctx) + max(len(c) for c in conts) - 1 <= self.max_length
            if not naive and ok and self.engine.single_token_fast_path and all(len(c) == 1 for c in conts):
                fast.append(i)
            elif not naive and ok and self.engine.share_context:
                shared.append(i)
            else:
                rest.append(i)
        if fast and self.engine.prefix_cache and not self.cfg.chat_template:
            shared_prefix = [i for i in fast if requests[i].prefix]
            for prefix in dict.fromkeys(requests[i].prefix for i in shared_prefix):
                self._score_after_prefix(encoded, [i for i in shared_prefix if requests[i].prefix == prefix],
                                         prefix, out)
            fast = [i for i in fast if out[i] is None]
        if fast:
            self._score_last_position(encoded, fast, out)
        if shared:
            self._score_shared(encoded, shared, out)
        if rest:
            self._score_naive(requests, encoded, rest, out)
        return out  # type: ignore[return-value]

    def _for_batches(self, lengths: dict[int, int], fn, rows_per_item: int = 1) -> None:
        """Call fn(batch) on indices grouped longest first under the token budget (and batch_size, if set).
        On CUDA out-of-memory the batch is retried at half the budget, which is kept for the rest of the run."""
        import torch

        todo = dict(lengths)
        while todo:
            batch = self._first_batch(todo, rows_per_item)
            try:
                fn(batch)
            except torch.cuda.OutOfMemoryError:
                if len(batch) == 1:
                    raise
                torch.cuda.empty_cache()
                self.budget = max(1, self.budget // 2)
                print(f"nanoeval: CUDA out of memory; token budget halved to {self.budget}", flush=True)
                continue
            for i in batch:
                del todo[i]

    def _first_batch(self, lengths: dict[int, int], rows_per_item: int) -> list[int]:
        order = sorted(lengths, key=lambda i: -lengths[i])
        batch = [order[0]]
        width = lengths[order[0]]
        for i in order[1:]:
            if (len(batch) + 1) * rows_per_item * width > self.budget:
                break
            if self.engine.batch_size and len(batch) >= self.engine.batch_size:
                break
            batch.append(i)
        return batch

    def _hidden(self, ids, mask, **kw):
        """Last hidden states of the language model (logits are computed only where needed)."""
        return self.model.model(input_ids=ids, attention_mask=mask, **kw)

    def _logprobs(self, hidden):
        return self.model.lm_head(hidden).float().log_softmax(-1)

    def _pad(self, seqs: list[list[int]]):
        import torch

        width = max(len(s) for s in seqs)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        ids = torch.tensor([s + [pad] * (width - len(s)) for s in seqs], device=self.device)
        mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs], device=self.device)
        return ids, mask

    def _score_last_position(self, encoded, idx, out):
        import torch

        def run(batch):
            seqs = [encoded[i][0] for i in batch]
            ids, mask = self._pad(seqs)
            hidden = self._hidden(ids, mask).last_hidden_state
            last = torch.tensor([len(s) - 1 for s in seqs], device=self.device)
            lp = self._logprobs(hidden[torch.arange(len(batch), device=self.device), last])
            self._take_first_tokens(lp, batch, encoded, out)

        self._for_batches({i: len(encoded[i][0]) for i in idx}, run)

    def _take_first_tokens(self, lp, batch, encoded, out) -> None:
        """out[i] = log-probabilities of each continuation's (single) token, with one device-to-host copy."""
        import torch

        width = max(len(encoded[i][1]) for i in batch)
        index = torch.tensor([[c[0] for c in encoded[i][1]] + [0] * (width - len(encoded[i][1])) for i in batch],
                             device=self.device)
        values = lp.gather(1, index).tolist()
        for row, i in enumerate(batch):
            out[i] = values[row][: len(encoded[i][1])]

    def _score_after_prefix(self, encoded, idx, prefix: str, out) -> None:
        """Single-token continuations after a shared prefix: the prefix's KV cache is computed once (per subject)
        and each batch runs only the remaining tokens. Requests whose tokens do not start with the prefix's own
        tokens are left for the plain path, so the result is exactly the same."""
        import copy

        import torch

        p_ids = self.encode(prefix.rstrip())  # cut before trailing space: no token merges across the cut
        idx = [i for i in idx if len(encoded[i][0]) > len(p_ids) and encoded[i][0][: len(p_ids)] == p_ids]
        if not idx or len(p_ids) < 2:
            return
        key = tuple(p_ids)
        if key not in self.prefix_caches:
            self.prefix_caches.clear()  # one prefix at a time (a subject's shots); bounded memory
            ids = torch.tensor([p_ids], device=self.device)
            self.prefix_caches[key] = self._hidden(ids, torch.ones_like(ids), use_cache=True).past_key_values
        n = len(p_ids)

        def run(batch):
            tails = [encoded[i][0][n:] for i in batch]
            ids, tail_mask = self._pad(tails)
            cache = copy.deepcopy(self.prefix_caches[key])
            cache.batch_repeat_interleave(len(batch))
            mask = torch.cat([torch.ones(len(batch), n, dtype=tail_mask.dtype, device=self.device), tail_mask], 1)
            positions = n + torch.arange(ids.shape[1], device=self.device)[None, :].expand(len(batch), -1)
            hidden = self._hidden(ids, mask, cache=cache, position_ids=positions, use_cache=False).last_hidden_state
            last = torch.tensor([len(t) - 1 for t in tails], device=self.device)
            lp = self._logprobs(hidden[torch.arange(len(batch), device=self.device), last])
            self._take_first_tokens(lp, batch, encoded, out)

        self._for_batches({i: len(encoded[i][0]) - n for i in idx}, run)

    def _score_shared(self, encoded, idx, out):
        """Contexts once (batched, right-padded), then all continuations against their context's KV cache."""
        import torch

        n_conts = max(len(encoded[i][1]) for i in idx)
        lengths = {i: len(encoded[i][0]) + max(len(c) for c in encoded[i][1]) for i in idx}

        def run(batch):
            ctxs = [encoded[i][0] for i in batch]
            ids, ctx_mask = self._pad(ctxs)
            res = self._hidden(ids, ctx_mask, use_cache=True)
            last = torch.tensor([len(c) - 1 for c in ctxs], device=self.device)
            first_lp = self._logprobs(res.last_hidden_state[torch.arange(len(batch), device=self.device), last])
            # One row per (context, continuation): the cache rows are selected (repeated) to match.
            owner = [b for b, i in enumerate(batch) for _ in encoded[i][1]]
            conts = [c for i in batch for c in encoded[i][1]]
            totals = first_lp[torch.tensor(owner, device=self.device),
                              torch.tensor([c[0] for c in conts], device=self.device)].tolist()
            if any(len(c) > 1 for c in conts):
                cache = res.past_key_values
                cache.batch_select_indices(torch.tensor(owner, device=self.device))
                tail_ids, tail_mask = self._pad([c[:-1] or [c[0]] for c in conts])
                tail_mask = tail_mask * torch.tensor([[len(c) > 1] for c in conts], device=self.device)
                start = torch.tensor([len(ctxs[b]) for b in owner], device=self.device)[:, None]
                positions = start + torch.arange(tail_ids.shape[1], device=self.device)[None, :]
                mask = torch.cat([ctx_mask[owner], tail_mask], dim=1)
                hidden = self._hidden(tail_ids, mask, cache=cache, position_ids=positions,
                                      use_cache=False).last_hidden_state
                # log-probabilities only at continuation positions, all rows in one lm_head call
                rows = [r for r, c in enumerate(conts) for _ in c[1:]]
                cols = [k for c in conts for k in range(len(c) - 1)]
                targets = torch.tensor([t for c in conts for t in c[1:]], device=self.device)
                at = (torch.tensor(rows, device=self.device), torch.tensor(cols, device=self.device))
                lp = self._logprobs(hidden[at])
                picked = lp.gather(-1, targets[:, None])[:, 0].double()  # sum in fp64: exact to ~1e-9
                sums = torch.zeros(len(conts), device=self.device, dtype=picked.dtype).index_add_(
                    0, torch.tensor(rows, device=self.device), picked).tolist()
                totals = [t + x for t, x in zip(totals, sums)]
            k = 0
            for i in batch:
                out[i] = totals[k: k + len(encoded[i][1])]
                k += len(encoded[i][1])

        self._for_batches(lengths, run, rows_per_item=n_conts)

    def _score_naive(self, requests, encoded, idx, out):
        """Each (context, continuation) as its own sequence: the reference path."""
        import torch

        items = []  # (request index, continuation index, input ids, continuation ids)
        for i in idx:
            for j, cont in enumerate(requests[i].continuations):
                ctx_ids, cont_ids = encoded[i][0], encoded[i][1][j]
                whole = ctx_ids + cont_ids
                if len(whole) - 1 > self.max_length:
                    self.truncated += 1
                items.append((i, j, whole[-(self.max_length + 1):][:-1], cont_ids))
        scores = {i: [0.0] * len(requests[i].continuations) for i in idx}
        def run(batch):
            ids, mask = self._pad([items[k][2] for k in batch])
            hidden = self._hidden(ids, mask).last_hidden_state
            for row, k in enumerate(batch):
                i, j, inp, cont = items[k]
                n = len(cont)
                lp = self._logprobs(hidden[row, len(inp) - n: len(inp)])
                scores[i][j] = lp.gather(-1, torch.tensor(cont, device=self.device)[:, None]).sum().item()

        self._for_batches({k: len(items[k][2]) for k in range(len(items))}, run)
        for i in idx:
            out[i] = scores[i]

    # ------------------------------------------------------------------------------------------------ generation
    def generate(self, requests: list[GenRequest], max_new_tokens: int) -> list[str]:
        """Greedy decoding, batched with left padding; each row stops at its EOS."""
        import torch

        tok = self.tokenizer
        tok.padding_side = "left"
        pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        texts = [self.prompt_text(r) for r in requests]
        per_image = getattr(self.processor, "image_seq_len", 256) if self.processor else 0
        lengths = {i: len(self.encode(t)) + per_image * len(r.images) + max_new_tokens
                   for i, (t, r) in enumerate(zip(texts, requests))}
        out: list[str] = [""] * len(requests)
        def run(batch):
            if self.processor is not None:  # the processor expands image tokens and makes pixel values
                images = [requests[i].images for i in batch]
                inputs = self.processor(text=[texts[i] for i in batch], images=images if any(images) else None,
                                        padding=True, return_tensors="pt").to(self.device)
                if "pixel_values" in inputs:
                    inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
            else:
                enc = [self.encode(texts[i])[-(self.max_length - max_new_tokens):] for i in batch]
                width = max(len(e) for e in enc)
                inputs = {"input_ids": torch.tensor([[pad_id] * (width - len(e)) + e for e in enc], device=self.device),
                          "attention_mask": torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in enc],
                                                         device=self.device)}
            width = inputs["input_ids"].shape[1]
            with torch.inference_mode():
                gen = self.model.generate(**inputs, do_sample=False, max_new_tokens=max_new_tokens,
                                          pad_token_id=pad_id)
            for row, i in enumerate(batch):
                out[i] = tok.decode(gen[row, width:], skip_special_tokens=True)

        self._for_batches(lengths, run)
        return out

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
