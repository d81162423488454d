"""Greedy generation, batched with left padding, as lm-evaluation-harness's `generate_until` defines the result.

Each row stops at the first of: one of its stop strings (GenRequest.until), an end-of-sequence token, or
max_new_tokens new tokens. Stop strings are looked for in the decoded text of the new tokens (special tokens written
out, as lm-eval's stopping criterion decodes them), so a stop string split over several tokens is found, and so is
one that is a special token's text ("<|im_end|>"). The response is the new tokens before the first end-of-sequence
token, decoded without special tokens, cut before the earliest stop string in it (lm-eval's
`for term in until: s = s.split(term)[0]`). `hit_max_new_tokens` counts the rows that generated max_new_tokens
tokens without meeting a stop string or an end-of-sequence token: the ones that were cut, not stopped.

Text-only transformers decoders run our own decode loop (`_greedy_loop`): the left-padded batch is prefilled into a
KV cache, then one token per step, and a row that stops leaves the batch at once (its input, mask, positions and
cache rows are dropped), so a batch does not run to its longest row's limit for everyone. It gives the tokens of
`model.generate(do_sample=False)` (tests/test_generation.py). Models with a processor (images) and models whose
generation config changes greedy decoding (a repetition penalty, suppressed tokens, ...) keep `model.generate`,
with a stopping criterion for the stop strings; there a stopped row stays in the batch until every row stopped.
"""
from __future__ import annotations

import inspect

from nanoeval.engine.requests import GenRequest

# generation-config fields that add a logits processor to greedy decoding in `model.generate`, with their neutral
# value: a model that sets one keeps `model.generate`, so the tokens stay exactly what it would give
_GREEDY_CHANGERS = {"repetition_penalty": 1.0, "encoder_repetition_penalty": 1.0, "no_repeat_ngram_size": 0,
                    "encoder_no_repeat_ngram_size": 0, "bad_words_ids": None, "min_length": 0, "min_new_tokens": 0,
                    "sequence_bias": None, "forced_bos_token_id": None, "forced_eos_token_id": None,
                    "suppress_tokens": None, "begin_suppress_tokens": None, "exponential_decay_length_penalty": None,
                    "guidance_scale": 1.0, "watermarking_config": None}


def generate(engine, requests: list[GenRequest], max_new_tokens: int) -> list[str]:
    """Greedy decoding with `engine` (an Engine) of each request, batched under the engine's token budget: the
    responses in the requests' order, each cut before its first stop string. Prompts are left-truncated to
    max_length - max_new_tokens tokens (counted as truncated_prompts)."""
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    tok = engine.tokenizer
    tok.padding_side = "left"
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    eos = engine.model.generation_config.eos_token_id
    eos = {tok.eos_token_id, *(eos if isinstance(eos, list) else [eos])} - {None}
    texts = [engine.prompt_text(r) for r in requests]
    per_image = getattr(engine.processor, "image_seq_len", 256) if engine.processor else 0
    encoded = engine.encode_many(texts)
    lengths = {i: len(e) + per_image * len(r.images) + max_new_tokens
               for i, (e, r) in enumerate(zip(encoded, requests))}
    keep = max(1, engine.max_length - max_new_tokens)  # room for the new tokens, and at least one
    # per request, set (not added) where known: an out-of-memory retry runs a batch again
    flags = [{"truncated_prompts": int(engine.processor is None and len(e) > keep), "hit_max_new_tokens": 0}
             for e in encoded]
    out: list[str] = [""] * len(requests)
    own_loop = uses_own_loop(engine)

    def run(rows):
        batch = [i for (i,) in rows]
        until = [requests[i].until for i in batch]
        if own_loop:
            new = _greedy_loop(engine, [encoded[i][-keep:] for i in batch], until, max_new_tokens, eos, pad_id)
        else:
            new = _hf_generate(engine, batch, texts, requests, encoded, keep, until, max_new_tokens, pad_id)
        for i, tokens in zip(batch, new):
            out[i], cut = _response(engine, tokens, requests[i], eos, max_new_tokens)
            flags[i]["hit_max_new_tokens"] = int(cut)

    engine.batcher.run(lengths, run)
    engine.count(flags)
    return out


def uses_own_loop(engine) -> bool:
    """Our decode loop (rows leave the batch) for a text-only transformers decoder whose forward takes a cache and
    position ids, whose cache layers can drop rows, and whose greedy decoding is a plain argmax."""
    if engine.processor is not None or engine.plain:
        return False
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

    params = inspect.signature(engine.model.forward).parameters
    if "cache" not in params or "position_ids" not in params:
        return False
    config = engine.model.generation_config
    if any(getattr(config, k, None) not in (None, neutral, []) for k, neutral in _GREEDY_CHANGERS.items()):
        return False
    return all(type(layer) in (DynamicLayer, DynamicSlidingWindowLayer)
               for layer in DynamicCache(config=engine.model.config).layers)


def _greedy_loop(engine, enc: list[list[int]], until: list[tuple[str, ...]], max_new_tokens: int,
                 eos: set[int], pad_id: int) -> list[list[int]]:
    """Each row's new tokens, up to and including the one that stopped it. Inputs, masks and positions as
    `model.generate` builds them (positions count the row's own tokens; no mask when nothing is padded; logits at
    the last position only), so the tokens are the same."""
    import torch
    from transformers import DynamicCache

    model, device = engine.model, engine.device
    width = max(map(len, enc))
    ids = torch.tensor([[pad_id] * (width - len(e)) + e for e in enc], device=device)
    if any(len(e) < width for e in enc):
        mask = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in enc], device=device)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
    else:
        mask, pos = None, torch.arange(width, device=device).expand(len(enc), -1)
    cache = DynamicCache(config=model.config)
    last_only = {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}
    rows = list(range(len(enc)))  # the request row of each row still in the batch
    new: list[list[int]] = [[] for _ in enc]
    with engine.no_grad():
        logits = model(input_ids=ids, attention_mask=mask, position_ids=pos, cache=cache, use_cache=True,
                       **last_only).logits
        pos = pos[:, -1]
        while True:
            nxt = logits[:, -1].float().argmax(-1)
            for r, t in zip(rows, nxt.tolist()):
                new[r].append(t)
            going = [k for k, r in enumerate(rows)
                     if new[r][-1] not in eos and len(new[r]) < max_new_tokens and not _met_stop(engine, new[r],
                                                                                                  until[r])]
            if not going:
                return new
            if len(going) < len(rows):  # the stopped rows leave the batch: input, mask, positions, cache
                keep = torch.tensor(going, device=device)
                cache.batch_select_indices(keep)
                nxt, pos = nxt[keep], pos[keep]
                mask = mask[keep] if mask is not None else None
                rows = [rows[k] for k in going]
            pos = pos + 1
            if mask is not None:
                mask = torch.cat([mask, mask.new_ones(len(rows), 1)], dim=1)
            logits = model(input_ids=nxt[:, None], attention_mask=mask, position_ids=pos[:, None], cache=cache,
                           use_cache=True, **last_only).logits


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
