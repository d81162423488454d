"""Greedy generation, batched with left padding; each row stops at its end-of-sequence token."""
from __future__ import annotations

from nanoeval.engine.requests import GenRequest, cut_at_stop


def generate(engine, requests: list[GenRequest], max_new_tokens: int) -> list[str]:
    """Greedy decoding with `engine` (an Engine), batched with left padding; each row stops at its EOS."""
    import torch

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

    def run(rows):
        batch = [i for (i,) in rows]
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
        with engine.no_grad():
            gen = engine.model.generate(**inputs, do_sample=False, max_new_tokens=max_new_tokens,
                                      pad_token_id=pad_id)
        for row, i in enumerate(batch):
            new = gen[row, width:].tolist()
            out[i], stopped = cut_at_stop(engine.decode(new), requests[i].until)  # STAND-IN: post-hoc cut
            flags[i]["hit_max_new_tokens"] = int(len(new) >= max_new_tokens and not eos & set(new) and not stopped)

    engine.batcher.run(lengths, run)
    engine.count(flags)
    return out
