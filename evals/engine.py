"""The model engine: load a model once per process, score log-likelihood requests, generate greedily.

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
import hashlib
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from evals.config import EngineConfig, ModelConfig
from evals.data import package_dir
from evals.identity import cache_root, hub_commit
from evals.progress import notice


@dataclass
class LLRequest:
    context: str
    continuations: list[str]
    prefix: str = ""  # a leading part of `context` shared by many requests (few-shot shots): its KV cache is reused


@dataclass
class _Unit:
    """A context and its continuations laid out for one stretch of a packed row: the context's tokens, then each
    continuation's input tokens (all but its last) as a branch that sees the context and itself only.
    targets[k] = (offset in the unit, token) of each token of continuation k: the first is predicted at the
    context's last position, the others inside the branch."""
    ctx: list[int]
    conts: list[list[int]]
    start: int = 0  # position of the first context token (the length of a cached prefix before it)

    def __post_init__(self):
        self.ids, self.branch = list(self.ctx), [0] * len(self.ctx)
        self.targets = []
        for k, cont in enumerate(self.conts, 1):
            base = len(self.ids)
            self.targets.append([(len(self.ctx) - 1, cont[0])] + [(base + m, t) for m, t in enumerate(cont[1:])])
            self.ids += cont[:-1]
            self.branch += [k] * (len(cont) - 1)
        self.pos = list(range(self.start, self.start + len(self.ctx)))
        for cont in self.conts:
            self.pos += range(self.start + len(self.ctx), self.start + len(self.ctx) + len(cont) - 1)

    def after(self, n: int) -> "_Unit":
        """The same unit with its first n context tokens left to a cached prefix."""
        return _Unit(self.ctx[n:], self.conts, self.start + n)


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
    notice(f"de-quantizing {src.name} into a plain HF folder, once (this takes a while: about 40 s for a 135M "
           f"model on a CPU; later runs load the folder in a second) -> {out}")
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
    def __init__(self, cfg: ModelConfig, engine: EngineConfig, root: Path, commit: str | None = None):
        import torch
        import transformers as tf

        tf.utils.logging.disable_progress_bar()
        tf.utils.logging.set_verbosity_error()
        self.cfg, self.engine = cfg, engine
        if engine.threads:
            torch.set_num_threads(engine.threads)
        if cfg.trust_remote_code:
            notice(f"WARNING: trust_remote_code is ON for {cfg.path}: code from the model repository will run on "
                   "this machine")
        t0 = time.time()
        location = model_location(cfg, root)
        if cfg.gguf_file:
            location = str(convert_gguf(location, cfg.gguf_file))
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
        # a hub model loads the commit its fingerprint names (resolved once, on the controller), not whatever the
        # branch points to by then
        self.commit = None if Path(location).is_dir() else commit or hub_commit(location, cfg.revision)
        common = dict(revision=self.commit or cfg.revision, trust_remote_code=cfg.trust_remote_code)
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
        # per-call counters; the runner takes and resets them after each chunk of a case
        self.counts = {"truncated_prompts": 0, "hit_max_new_tokens": 0}
        self.budget = engine.token_budget or (32768 if self.device.startswith("cuda") else 512)
        # Packing needs a custom attention mask: SDPA or eager attention (flash attention takes none).
        loaded = getattr(self.model.config, "text_config", None) or self.model.config
        self.attn_impl = getattr(loaded, "_attn_implementation", None) or "sdpa"
        self.packing = engine.packing and self.attn_impl in ("sdpa", "eager")
        self.prefix_caches: dict[tuple, object] = {}  # few-shot prefix -> its key/value cache (one per subject)
        self.load_seconds = time.time() - t0
        self.meta = {"id": f"{cfg.package}/{cfg.gguf_file or cfg.path}" if cfg.package else cfg.path, "package": cfg.package, "gguf_file": cfg.gguf_file, "revision": cfg.revision,
                     "commit": self.commit,
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
        scores: dict[tuple[int, int], float] = {}  # (request, continuation) -> log-likelihood
        units: dict[tuple[int, int], _Unit] = {}   # (request, first continuation) -> a context and continuations
        rest = []
        for i, (ctx, conts) in enumerate(encoded):
            if naive or not all(conts) or len(ctx) + max(len(c) for c in conts) - 1 > self.max_length:
                rest.append(i)  # over-long: the naive path left-truncates each sequence
            elif self.engine.share_context:
                units[i, 0] = _Unit(ctx, conts)
            else:
                units.update({(i, k): _Unit(ctx, [c]) for k, c in enumerate(conts)})
        by_prefix: dict[str, list] = {}
        if self.engine.prefix_cache and not self.cfg.chat_template:
            for key in units:
                if requests[key[0]].prefix:
                    by_prefix.setdefault(requests[key[0]].prefix, []).append(key)
        for prefix, keys in by_prefix.items():
            cache = self._prefix_cache(prefix, [units[key].ctx for key in keys])
            if cache is not None:  # only the tokens after the prefix go through the model
                n = cache.get_seq_length()
                self._score_units({key: units.pop(key).after(n) for key in keys}, scores, cache)
        self._score_units(units, scores)
        self._score_naive(encoded, rest, scores)
        return [[scores[i, k] for k in range(len(req.continuations))] for i, req in enumerate(requests)]

    def _for_batches(self, lengths: dict[int, int], fn, pack: bool = False) -> None:
        """Call fn(rows) on lists of indices, longest first, under the token budget (and batch_size, if set).
        Unpacked, a row is one index (padded to the longest); packed, a row holds as many as fit. On CUDA
        out-of-memory the batch is retried at half the budget, which is kept for the rest of the run."""
        import torch

        order = sorted(lengths, key=lambda i: -lengths[i])
        while order:
            rows = self._first_batch(order, lengths, pack)
            try:
                fn(rows)
            except torch.cuda.OutOfMemoryError:
                if sum(map(len, rows)) == 1:
                    raise
                torch.cuda.empty_cache()
                self.budget = max(1, self.budget // 2)
                notice(f"CUDA out of memory; token budget halved to {self.budget}")
                continue
            done = {i for row in rows for i in row}
            order = [i for i in order if i not in done]

    def _first_batch(self, order: list[int], lengths: dict[int, int], pack: bool) -> list[list[int]]:
        """Rows as wide as the longest item, as many as the budget allows. Packed, each item goes to the first row
        with room (first-fit decreasing): shorter items fill what would be padding, and no row is wider than
        unpacked, so the attention work (quadratic in the row width) never grows."""
        width = lengths[order[0]]
        max_rows, max_items = max(1, self.budget // width), self.engine.batch_size or len(order)
        rows: list[list[int]] = []
        room: list[int] = []
        for i in order:
            n = lengths[i]
            r = next((r for r, free in enumerate(room) if free >= n), None) if pack else None
            if r is None:
                if len(rows) == max_rows:
                    break  # full: the next (shorter) items start the next batch
                rows.append([])
                room.append(width)
                r = len(rows) - 1
            rows[r].append(i)
            room[r] -= n
            max_items -= 1
            if not max_items:
                break
        return rows

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

    def _prefix_cache(self, prefix: str, contexts: list[list[int]]):
        """The key/value cache of a shared prefix (one subject's shots), computed once and kept while the same
        prefix comes back; None unless every context starts with the prefix's own tokens (so the result is
        exactly the same)."""
        import torch

        p_ids = tuple(self.encode(prefix.rstrip()))  # cut before trailing space: no token merges across the cut
        n = len(p_ids)
        if n < 2 or any(len(c) <= n or tuple(c[:n]) != p_ids for c in contexts):
            return None
        if p_ids not in self.prefix_caches:
            self.prefix_caches.clear()  # one prefix at a time: bounded memory
            ids = torch.tensor([p_ids], device=self.device)
            self.prefix_caches[p_ids] = self._hidden(ids, torch.ones_like(ids), use_cache=True).past_key_values
        return self.prefix_caches[p_ids]

    def _score_units(self, units: dict, scores: dict, prefix_cache=None) -> None:
        """Each unit's context once, each continuation a branch that sees the context and itself (a tree
        attention mask), units packed into rows; log-probabilities only at the continuations' targets, summed
        in fp64. With a prefix cache, every row also attends to the prefix's keys and values."""
        import copy

        import torch

        keys, dev = list(units), self.device
        n_prefix = prefix_cache.get_seq_length() if prefix_cache is not None else 0

        def run(rows: list[list[int]]):
            width = max(sum(len(units[keys[i]].ids) for i in row) for row in rows)
            ids, pos, owner, branch = [], [], [], []
            where, targets, slot = [], [], []  # scored (row, column), its target token, its (request, cont.)
            for r, row in enumerate(rows):
                col = 0
                for i in row:
                    (req, first), u = keys[i], units[keys[i]]
                    for k, tgt in enumerate(u.targets):
                        where += [(r, col + at) for at, _ in tgt]
                        targets += [tok for _, tok in tgt]
                        slot += [(req, first + k)] * len(tgt)
                    ids += u.ids
                    pos += u.pos
                    owner += [i] * len(u.ids)
                    branch += u.branch
                    col += len(u.ids)
                ids += [0] * (width - col)  # padding: its own unit (-1), position 0
                pos += [0] * (width - col)
                owner += [-1] * (width - col)
                branch += [0] * (width - col)
            ids, pos, owner, branch = (torch.tensor(x, device=dev).view(len(rows), width)
                                       for x in (ids, pos, owner, branch))
            cache = None
            if prefix_cache is not None:  # the model appends to the cache it is given: use a copy
                cache = copy.deepcopy(prefix_cache)
                cache.batch_repeat_interleave(len(rows))
            hidden = self._hidden(ids, self._tree_mask(owner, branch, n_prefix), position_ids=pos,
                                  cache=cache, use_cache=False).last_hidden_state
            at = torch.tensor(where, device=dev)
            lp = self._logprobs(hidden[at[:, 0], at[:, 1]])
            picked = lp.gather(-1, torch.tensor(targets, device=dev)[:, None])[:, 0].double()
            index = {s: n for n, s in enumerate(dict.fromkeys(slot))}
            sums = torch.zeros(len(index), dtype=torch.float64, device=dev).index_add_(
                0, torch.tensor([index[s] for s in slot], device=dev), picked).tolist()
            scores.update(zip(index, sums))

        if keys:
            self._for_batches({i: len(units[key].ids) for i, key in enumerate(keys)}, run, self.packing)

    def _tree_mask(self, owner, branch, n_prefix: int):
        """[rows, 1, query, key]: a token sees earlier tokens of its own unit's context and of its own branch
        (padding sees padding: no empty rows); all prefix positions are visible."""
        import torch

        width = owner.shape[1]
        causal = torch.ones(width, width, dtype=torch.bool, device=owner.device).tril()
        mask = (owner[:, :, None] == owner[:, None, :]) & causal & (
            (branch[:, None, :] == 0) | (branch[:, :, None] == branch[:, None, :]))
        if n_prefix:
            mask = torch.cat([mask.new_ones(owner.shape[0], width, n_prefix), mask], -1)
        mask = mask[:, None]
        if self.attn_impl == "eager":  # eager attention adds the mask
            return torch.zeros(mask.shape, dtype=self.model.dtype, device=mask.device).masked_fill(
                ~mask, torch.finfo(self.model.dtype).min)
        return mask

    def _score_naive(self, encoded, idx: list[int], scores: dict) -> None:
        """Each (context, continuation) as its own right-padded sequence: the reference path."""
        import torch

        items = []  # (request index, continuation index, input ids, continuation ids)
        for i in idx:
            cut = False
            for j, cont_ids in enumerate(encoded[i][1]):
                whole = encoded[i][0] + cont_ids
                cut |= len(whole) - 1 > self.max_length
                items.append((i, j, whole[-(self.max_length + 1):][:-1], cont_ids))
            self.counts["truncated_prompts"] += cut  # once per prompt, not per continuation

        def run(rows):
            batch = [k for (k,) in rows]
            ids, mask = self._pad([items[k][2] for k in batch])
            hidden = self._hidden(ids, mask).last_hidden_state
            for row, k in enumerate(batch):
                i, j, inp, cont = items[k]
                lp = self._logprobs(hidden[row, len(inp) - len(cont): len(inp)])
                scores[i, j] = lp.gather(-1, torch.tensor(cont, device=self.device)[:, None]).double().sum().item()

        self._for_batches({k: len(items[k][2]) for k in range(len(items))}, run)

    # ------------------------------------------------------------------------------------------------ generation
    def generate(self, requests: list[GenRequest], max_new_tokens: int) -> list[str]:
        """Greedy decoding, batched with left padding; each row stops at its EOS."""
        import torch

        tok = self.tokenizer
        tok.padding_side = "left"
        pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        eos = self.model.generation_config.eos_token_id
        eos = {tok.eos_token_id, *(eos if isinstance(eos, list) else [eos])} - {None}
        texts = [self.prompt_text(r) for r in requests]
        per_image = getattr(self.processor, "image_seq_len", 256) if self.processor else 0
        lengths = {i: len(self.encode(t)) + per_image * len(r.images) + max_new_tokens
                   for i, (t, r) in enumerate(zip(texts, requests))}
        out: list[str] = [""] * len(requests)

        def run(rows):
            batch = [i for (i,) in rows]
            if self.processor is not None:  # the processor expands image tokens and makes pixel values
                images = [requests[i].images for i in batch]
                inputs = self.processor(text=[texts[i] for i in batch], images=images if any(images) else None,
                                        padding=True, return_tensors="pt").to(self.device)
                if "pixel_values" in inputs:
                    inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
            else:
                enc = [self.encode(texts[i]) for i in batch]
                keep = max(1, self.max_length - max_new_tokens)  # room for the new tokens, and at least one
                self.counts["truncated_prompts"] += sum(len(e) > keep for e in enc)
                enc = [e[-keep:] for e in enc]
                width = max(len(e) for e in enc)
                inputs = {"input_ids": torch.tensor([[pad_id] * (width - len(e)) + e for e in enc], device=self.device),
                          "attention_mask": torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in enc],
                                                         device=self.device)}
            width = inputs["input_ids"].shape[1]
            with torch.inference_mode():
                gen = self.model.generate(**inputs, do_sample=False, max_new_tokens=max_new_tokens,
                                          pad_token_id=pad_id)
            for row, i in enumerate(batch):
                new = gen[row, width:].tolist()
                self.counts["hit_max_new_tokens"] += len(new) >= max_new_tokens and not eos & set(new)
                out[i] = self.decode(new)

        self._for_batches(lengths, run)
        return out

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
