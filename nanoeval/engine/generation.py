"""Greedy generation, batched with left padding, as lm-evaluation-harness's `generate_until` defines the result.

Each row stops at the first of: one of its stop strings (GenRequest.until), an end-of-sequence token, or
max_new_tokens new tokens. Stop strings are looked for in the decoded text of the new tokens (special tokens written
out, as lm-eval's stopping criterion decodes them), so a stop string split over several tokens is found, and so is
one that is a special token's text ("<|im_end|>"). The response is the new tokens before the first end-of-sequence
token, decoded without special tokens, cut before the earliest stop string in it (lm-eval's
`for term in until: s = s.split(term)[0]`). `hit_max_new_tokens` counts the rows that generated max_new_tokens
tokens without meeting a stop string or an end-of-sequence token: the ones that were cut, not stopped.

Text-only transformers decoders whose layers all attend to every position run our own decode loop (`_greedy_loop`):
rows are prefilled longest first under the token budget straight into key/value caches preallocated for
max_new_tokens more positions, as many rows decoding together as 2 GiB of cache holds on a CPU (half the free memory
on a GPU; at most engine.batch_size), one token per step written in place. Rows that stopped leave the batch (moved
out in place) once they are a quarter of it, and new rows join when half of it has stopped, so a batch does not run
to its longest row's limit for everyone. A generation may carry a gold continuation over the same prompt
(`generate(..., gold)`: a generative task's bits per byte): it follows the prompt in the same prefill, so its
log-likelihood costs no second pass over the prompt. The loop gives the tokens of `model.generate(do_sample=False)`
(tests/test_generation.py). Models with a processor (images), sliding-window layers, or a generation config that
changes greedy decoding (a repetition penalty, suppressed tokens, ...) keep `model.generate`, with a stopping
criterion for the stop strings; there a stopped row stays in the batch until every row stopped.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

from nanoeval.engine.requests import GenRequest, LLRequest

# generation-config fields that add a logits processor to greedy decoding in `model.generate`, with their neutral
# value: a model that sets one keeps `model.generate`, so the tokens stay exactly what it would give
_GREEDY_CHANGERS = {"repetition_penalty": 1.0, "encoder_repetition_penalty": 1.0, "no_repeat_ngram_size": 0,
                    "encoder_no_repeat_ngram_size": 0, "bad_words_ids": None, "min_length": 0, "min_new_tokens": 0,
                    "sequence_bias": None, "forced_bos_token_id": None, "forced_eos_token_id": None,
                    "suppress_tokens": None, "begin_suppress_tokens": None, "exponential_decay_length_penalty": None,
                    "guidance_scale": 1.0, "watermarking_config": None}


def generate(engine, requests: list[GenRequest], max_new_tokens: int,
             gold: list[LLRequest | None] | None = None) -> tuple[list[str], dict[int, float]]:
    """Greedy decoding with `engine` (an Engine) of each request: the responses in the requests' order, each cut
    before its first stop string; and the log-likelihood of each `gold` request (one per request, or None) that was
    scored from its generation's own prefill (by request index; the rest are left to the caller). Prompts are
    left-truncated to max_length - max_new_tokens tokens (counted as truncated_prompts)."""
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    if max_new_tokens >= engine.max_length:
        raise ValueError(f"max_new_tokens {max_new_tokens} leaves no room for the prompt in the model's max_length "
                         f"({engine.max_length} tokens): give scoring.max_new_tokens below it")
    tok = engine.tokenizer
    tok.padding_side = "left"
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    eos = engine.model.generation_config.eos_token_id
    eos = {tok.eos_token_id, *(eos if isinstance(eos, list) else [eos])} - {None}
    texts = [engine.prompt_text(r) for r in requests]
    per_image = getattr(engine.processor, "image_seq_len", 256) if engine.processor else 0
    encoded = engine.encode_many(texts)
    keep = engine.max_length - max_new_tokens  # room for the new tokens
    # per request, set (not added) where known: an out-of-memory retry runs a batch again
    flags = [{"truncated_prompts": int(engine.processor is None and len(e) > keep), "hit_max_new_tokens": 0}
             for e in encoded]
    until = [r.until for r in requests]
    scores: dict[int, float] = {}
    if uses_own_loop(engine):
        prompts = [e[-keep:] for e in encoded]
        new, scores = _greedy_loop(engine, prompts, until, max_new_tokens, eos, pad_id,
                                   _gold_tokens(engine, prompts, encoded, gold))
    else:
        new = [[] for _ in requests]

        def run(rows):
            batch = [i for (i,) in rows]
            got = _hf_generate(engine, batch, texts, requests, encoded, keep, [until[i] for i in batch],
                               max_new_tokens, pad_id)
            for i, tokens in zip(batch, got):
                new[i] = tokens

        engine.batcher.run({i: len(e) + per_image * len(r.images) + max_new_tokens
                            for i, (e, r) in enumerate(zip(encoded, requests))}, run)
    out = []
    for i, tokens in enumerate(new):
        text, cut = _response(engine, tokens, requests[i], eos, max_new_tokens)
        out.append(text)
        flags[i]["hit_max_new_tokens"] = int(cut)
    engine.count(flags)
    return out, scores


def uses_own_loop(engine) -> bool:
    """Our decode loop (rows leave the batch) for a text-only transformers decoder whose forward takes a cache and
    position ids, whose layers all attend to every position, and whose greedy decoding is a plain argmax."""
    if engine.processor is not None or engine.plain:
        return False
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    params = inspect.signature(engine.model.forward).parameters
    if "cache" not in params or "position_ids" not in params:
        return False
    config = engine.model.generation_config
    if any(getattr(config, k, None) not in (None, neutral, []) for k, neutral in _GREEDY_CHANGERS.items()):
        return False
    # full-attention layers only: a sliding window's layer keeps the window alone, which preallocated caches do not
    return all(type(layer) is DynamicLayer for layer in DynamicCache(config=engine.model.config).layers)


def _gold_tokens(engine, prompts: list[list[int]], encoded: list[list[int]],
                 gold: list[LLRequest | None] | None) -> dict[int, list[int]]:
    """The continuation tokens of each gold request that its generation's prefill can score, by request index: one
    continuation, whose context tokens (as log-likelihood scoring lays them out) are exactly the generation's
    untruncated prompt, and which fits the model."""
    idx = [i for i, g in enumerate(gold or []) if g is not None and len(g.pairs()) == 1]
    out = {}
    for i, (ctx, conts, scored) in zip(idx, engine.encode_requests([gold[i] for i in idx])):
        cont = conts[0]
        if cont and ctx == prompts[i] == encoded[i] and scored[0] == len(cont) and \
                len(ctx) + len(cont) - 1 <= engine.max_length:
            out[i] = cont
    return out


def _decode_rows(engine, room: int) -> int:
    """How many rows decode together: as many as the key/value memory holds with `room` positions each (2 GiB on a
    CPU, half of what is free on a GPU, counted when a batch is (re)filled: a refill holds the running batch's
    caches while it fills the new ones), at most engine.batch_size."""
    import torch

    text = engine.model.config.get_text_config()  # an estimate (the buffers take the keys' and values' own shapes)
    heads = getattr(text, "num_key_value_heads", None) or text.num_attention_heads
    dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    per_position = text.num_hidden_layers * 2 * heads * dim * engine.model.dtype.itemsize
    if engine.device.startswith("cuda"):  # free, and what torch holds cached but unused
        device = torch.device(engine.device)
        memory = (torch.cuda.mem_get_info(device)[0] + torch.cuda.memory_reserved(device)
                  - torch.cuda.memory_allocated(device)) // 2
    else:
        memory = 2 << 30
    rows = max(1, memory // (per_position * room))
    return min(rows, engine.batcher.batch_size) if engine.batcher.batch_size else rows


def _greedy_loop(engine, prompts: list[list[int]], until: list[tuple[str, ...]], max_new_tokens: int, eos: set[int],
                 pad_id: int, golds: dict[int, list[int]] | None = None) -> tuple[list[list[int]], dict[int, float]]:
    """Each row's new tokens, up to and including the one that stopped it; and the log-likelihood of each row's gold
    continuation (`golds`: row -> its tokens), scored in the row's prefill.

    As many rows as the key/value memory holds (_decode_rows) decode together, in caches preallocated for
    max_new_tokens more positions (a step writes its own position; transformers' DynamicLayer concatenates, a copy
    of the whole cache every step). They are prefilled longest first, in chunks under the token budget, straight
    into those caches: each prompt left-padded and followed by its gold continuation but the last token
    (right-padded), so one forward gives the prompt's keys and values, the first new token and the gold's
    log-probabilities. Rows that stopped leave the batch once they are a quarter of it (the others move up in
    place), and new rows are prefilled and join it when half of it has stopped (the running rows' common padding
    dropped, each side shifted right to the wider one's width). Inputs, masks and positions as
    `model.generate` builds them (positions count the row's own tokens; no mask when nothing is padded; logits at
    the last position only), so the tokens are the same."""
    model, golds = engine.model, golds or {}
    last_only = {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}
    new: list[list[int]] = [[] for _ in prompts]
    scores: dict[int, float] = {}
    pending = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    cap = _decode_rows(engine, len(prompts[pending[0]]) + max_new_tokens) if pending else 1

    def going(batch: _Batch, among) -> list[int]:
        """Append each row's new token (of the rows `among`); the rows it did not stop."""
        out, tokens = [], batch.nxt.tolist()
        for k in among:
            r = batch.rows[k]
            new[r].append(tokens[k])
            if tokens[k] not in eos and len(new[r]) < max_new_tokens and not _met_stop(engine, new[r], until[r]):
                out.append(k)
        return out

    batch, live = None, []  # the rows decoding, and which of them still generate
    with engine.no_grad():
        while pending or live:
            if pending and len(live) <= cap // 2:  # (re)fill: prefill more rows, after those still running
                width = max(_kept_width(batch, live), len(prompts[pending[0]]))  # the longest pending: the widest
                n = max(1, _decode_rows(engine, width + max_new_tokens) - len(live))
                take, pending = pending[:n], pending[n:]
                batch = _refill(engine, batch, live, take, prompts, golds, pad_id, scores, max_new_tokens)
                live = list(range(len(live))) + going(batch, range(len(live), len(batch.rows)))
                continue  # rows that stopped at their first token may leave room for more at once
            if len(batch.rows) - len(live) >= max(1, len(batch.rows) // 4):
                _compact(model, batch, live)  # the stopped rows leave
                live = list(range(len(live)))
            if live:
                _step(model, batch, last_only, engine.max_length - 1)
                live = going(batch, live)
    return new, scores


@dataclass
class _Batch:
    """Rows decoding together, left-padded to `width` filled positions of their preallocated caches."""
    rows: list[int]     # the request of each row
    layers: list        # per layer (keys, values): [rows, kv heads, room, head dim]
    start: Any          # [rows] each row's first real position (the padding before it is zeros, masked)
    pos: Any            # [rows] the position id of the row's last token fed
    nxt: Any            # [rows] the token it feeds next (the last one generated)
    width: int          # positions filled
    cache: Any = None   # the model's view of `layers`

    def wrap(self, model) -> None:
        from transformers import DynamicCache

        from nanoeval.engine.kvcache import PreallocatedLayer

        self.cache = DynamicCache(config=model.config)
        self.cache.layers = [PreallocatedLayer(keys, values, self.width) for keys, values in self.layers]


def _kept_width(batch: _Batch | None, live: list[int]) -> int:
    """The positions the running rows `live` need: the batch's width less the padding they all have."""
    return batch.width - int(batch.start[live].min()) if live else 0


def _refill(engine, old: _Batch | None, live: list[int], take: list[int], prompts: list[list[int]],
            golds: dict[int, list[int]], pad_id: int, scores: dict[int, float], max_new_tokens: int) -> _Batch:
    """A new batch: the `live` rows of `old` (the padding they all have dropped), then the rows `take`, prefilled
    into it in chunks under the token budget (_prefill); all right-aligned at the wider of the two, with room for
    max_new_tokens more positions."""
    import torch
    from transformers import DynamicCache

    from nanoeval.engine.kvcache import Buffers

    device, kept = engine.device, _kept_width(old, live)
    width = max([kept] + [len(prompts[i]) for i in take])
    layers = [Buffers(len(live) + len(take), width + max_new_tokens)
              for _ in DynamicCache(config=engine.model.config).layers]
    rows, start, pos, nxt = [], [], [], []
    if live:
        at, trim = torch.tensor(live, device=device), old.width - kept
        for buffers, (k, v) in zip(layers, old.layers):
            buffers.write(slice(0, len(live)), width - kept, k[at, :, trim:old.width], v[at, :, trim:old.width])
        rows += [old.rows[k] for k in live]
        start.append(old.start[at] - trim + width - kept)
        pos.append(old.pos[at])
        nxt.append(old.nxt[at])
    # the batcher sizes a chunk by its longest item; the chunk is as wide as its longest prompt plus its longest gold
    tail = max((len(golds[i]) - 1 for i in take if i in golds), default=0)

    def prefill(chunk):
        chunk = [i for (i,) in chunk]
        nxt.append(_prefill(engine, chunk, prompts, golds, pad_id, scores, layers, len(rows), width))
        rows.extend(chunk)

    engine.batcher.run({i: len(prompts[i]) + tail for i in take}, prefill)
    start.append(width - torch.tensor([len(prompts[i]) for i in rows[len(live):]], device=device))
    pos.append(torch.tensor([len(prompts[i]) - 1 for i in rows[len(live):]], device=device))
    batch = _Batch(rows, [(b.keys, b.values) for b in layers], torch.cat(start), torch.cat(pos), torch.cat(nxt),
                   width)
    padding = (torch.arange(width, device=device) < batch.start[:, None])[:, None, :, None]
    for keys, values in batch.layers:  # the padding before a row: zeros (masked, but never NaN)
        keys[:, :, :width].masked_fill_(padding, 0)
        values[:, :, :width].masked_fill_(padding, 0)
    batch.wrap(engine.model)
    return batch


def _prefill(engine, rows: list[int], prompts: list[list[int]], golds: dict[int, list[int]], pad_id: int,
             scores: dict[int, float], dest: list, at: int, width: int):
    """One forward over the rows' prompts, each left-padded and followed by its gold continuation but the last token
    (right-padded); the prompts' keys and values go to rows at, at+1, ... of `dest` (each layer's Buffers),
    right-aligned at `width`.
    Returns each row's first new token (logits at its prompt's last position); each gold's log-likelihood goes to
    `scores` (fp32 log-probabilities summed in fp64)."""
    import torch
    from transformers import DynamicCache

    from nanoeval.engine.kvcache import WriteThroughLayer

    model, device = engine.model, engine.device
    w = max(len(prompts[r]) for r in rows)
    tail = max((len(golds[r]) - 1 for r in rows if r in golds), default=0)
    ids, mask = [], []
    for r in rows:
        p, g = prompts[r], golds.get(r, [0])[:-1]
        ids.append([pad_id] * (w - len(p)) + p + g + [pad_id] * (tail - len(g)))
        mask.append([0] * (w - len(p)) + [1] * (len(p) + len(g)) + [0] * (tail - len(g)))
    ids, mask = torch.tensor(ids, device=device), torch.tensor(mask, device=device)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    if bool(mask.all()):
        mask, pos = None, torch.arange(w + tail, device=device).expand(len(rows), -1)
    keep = ({"logits_to_keep": 1 if not tail else torch.arange(w - 1, w + tail, device=device)}
            if "logits_to_keep" in inspect.signature(model.forward).parameters else {})
    cache = DynamicCache(config=model.config)
    cache.layers = [WriteThroughLayer(buffers, slice(at, at + len(rows)), width - w, w) for buffers in dest]
    logits = model(input_ids=ids, attention_mask=mask, position_ids=pos, cache=cache, use_cache=True, **keep).logits
    if not keep:
        logits = logits[:, w - 1:]
    for k, r in enumerate(rows):
        if r in golds:
            g = torch.tensor(golds[r], device=device)
            lp = logits[k, :len(g)].float().log_softmax(-1).gather(-1, g[:, None])
            scores[r] = lp.double().sum().item()
    return logits[:, 0].float().argmax(-1)


def _compact(model, batch: _Batch, live: list[int]) -> None:
    """Keep the rows still generating: each moved up in place (its filled positions), the batch a view of the first
    rows."""
    import torch

    for j, k in enumerate(live):
        if j != k:
            for keys, values in batch.layers:
                keys[j, :, :batch.width] = keys[k, :, :batch.width]
                values[j, :, :batch.width] = values[k, :, :batch.width]
    at, n = torch.tensor(live, device=batch.nxt.device), len(live)
    batch.layers = [(keys[:n], values[:n]) for keys, values in batch.layers]
    batch.rows = [batch.rows[k] for k in live]
    batch.start, batch.pos, batch.nxt = batch.start[at], batch.pos[at], batch.nxt[at]
    batch.wrap(model)


def _step(model, batch: _Batch, last_only: dict, last_position: int) -> None:
    """One new token for every row of the batch (rows that stopped too, until they leave: their positions held at
    the model's last, which a running row never passes)."""
    import torch

    n = batch.width
    mask = (torch.arange(n + 1, device=batch.start.device) >= batch.start[:, None]).long() \
        if bool((batch.start > 0).any()) else None
    batch.pos = (batch.pos + 1).clamp(max=last_position)
    logits = model(input_ids=batch.nxt[:, None], attention_mask=mask, position_ids=batch.pos[:, None],
                   cache=batch.cache, use_cache=True, **last_only).logits
    batch.nxt, batch.width = logits[:, -1].float().argmax(-1), n + 1


def _hf_generate(engine, batch: list[int], texts: list[str], requests: list[GenRequest], encoded: list[list[int]],
                 keep: int, until: list[tuple[str, ...]], max_new_tokens: int, pad_id: int) -> list[list[int]]:
    """`model.generate` (a processor's model: images; or a generation config that changes greedy decoding), with
    a stopping criterion for the stop strings. A stopped row cannot leave `generate`'s batch: it is padded until
    every row stopped. Each row's new tokens."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    if engine.processor is not None:  # the processor expands image tokens and makes pixel values
        images = [requests[i].images for i in batch]
        inputs = engine.processor(text=[texts[i] for i in batch], images=images if any(images) else None,
                                  padding=True, return_tensors="pt").to(engine.device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(engine.model.dtype)
    else:
        enc = [encoded[i][-keep:] for i in batch]
        width = max(len(e) for e in enc)
        inputs = {"input_ids": torch.tensor([[pad_id] * (width - len(e)) + e for e in enc], device=engine.device),
                  "attention_mask": torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in enc],
                                                 device=engine.device)}
    width = inputs["input_ids"].shape[1]

    class StopStrings(StoppingCriteria):
        """Per row: has a stop string appeared in the decoded new tokens?"""
        def __call__(self, input_ids, scores, **kwargs):
            return torch.tensor([_met_stop(engine, row, stops) for row, stops in
                                 zip(input_ids[:, width:].tolist(), until)], device=input_ids.device)

    stopping = StoppingCriteriaList([StopStrings()] if any(until) else [])
    with engine.no_grad():
        gen = engine.model.generate(**inputs, do_sample=False, max_new_tokens=max_new_tokens, pad_token_id=pad_id,
                                    stopping_criteria=stopping)
    return gen[:, width:].tolist()


def _met_stop(engine, tokens: list[int], until: tuple[str, ...]) -> bool:
    """Does a stop string appear in these new tokens' text (special tokens written out)?"""
    if not until:
        return False
    text = engine.tokenizer.decode(tokens, skip_special_tokens=False)
    return any(s in text for s in until)


def _response(engine, tokens: list[int], req: GenRequest, eos: set[int], max_new_tokens: int) -> tuple[str, bool]:
    """A row's response, from its new tokens: those before the first end-of-sequence token, decoded, cut at the
    stop strings (GenRequest.cut); and whether it was cut at max_new_tokens (no stop string, no end of sequence)."""
    n = next((k for k, t in enumerate(tokens) if t in eos), len(tokens))
    text, met = req.cut(engine.decode(tokens[:n]))
    return text, not met and n >= max_new_tokens and not _met_stop(engine, tokens[:n], req.until)
