"""Loading a model: a local folder (package-relative, project-relative or absolute), a hub id, or a GGUF file
de-quantized once into a cached plain folder; the model's metadata for summary.json."""
from __future__ import annotations

import hashlib
import os
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from nanoeval.config import ModelConfig
from nanoeval.data import package_dir
from nanoeval.identity import cache_root, file_digest, hub_commit
from nanoeval.progress import notice


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


def gguf_cache_dir(src: Path) -> Path:
    """Where a GGUF file's de-quantized folder is cached: keyed by the file's content (its sha256, remembered for the
    fingerprint: read once) and the transformers and gguf versions that convert it, never by its path, so every
    clone or copy of the same file, under any name, shares one folder."""
    from importlib import metadata

    def version(pkg):
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return None

    what = f"{file_digest(src)}|transformers {version('transformers')}|gguf {version('gguf')}"
    return cache_root() / "gguf" / hashlib.sha256(what.encode()).hexdigest()[:24]


def convert_gguf(folder: str, gguf_file: str) -> Path:
    """De-quantize a GGUF file into a plain HF folder once; later runs load the cached folder in a second."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = Path(folder) / gguf_file
    out = gguf_cache_dir(src)
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


@dataclass
class Loaded:
    model: object
    tokenizer: object
    processor: object | None    # vision-language models: expands image tokens, makes pixel values
    kind: str                   # causal_lm | vision_lm
    device: str
    max_length: int
    attn_impl: str
    meta: dict                  # summary.json's `model`
    plain: bool = False         # not a transformers decoder (.model + .lm_head): forward(ids) -> logits, naive path


def load_model(cfg: ModelConfig, root: Path, commit: str | None = None) -> Loaded:
    """The model, on its device, in eval mode. `commit`: the hub commit the run's fingerprint names (resolved once,
    on the controller), so every worker loads exactly that, not whatever the branch points to by then."""
    import torch
    import transformers as tf

    tf.utils.logging.disable_progress_bar()
    tf.utils.logging.set_verbosity_error()
    if cfg.trust_remote_code:
        notice(f"WARNING: trust_remote_code is ON for {cfg.path}: code from the model repository will run on "
               "this machine")
    t0 = time.time()
    location = model_location(cfg, root)
    if cfg.gguf_file:
        location = str(convert_gguf(location, cfg.gguf_file))
    device = ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
    commit = None if Path(location).is_dir() else commit or hub_commit(location, cfg.revision)
    common = dict(revision=commit or cfg.revision, trust_remote_code=cfg.trust_remote_code)
    hf_config = tf.AutoConfig.from_pretrained(location, **common)
    kind = cfg.kind
    if kind == "auto":
        kind = "vision_lm" if hasattr(hf_config, "vision_config") else "causal_lm"
    dtype = getattr(torch, cfg.dtype)
    if kind == "vision_lm":
        processor = tf.AutoProcessor.from_pretrained(location, **common)
        tokenizer = processor.tokenizer
        model = tf.AutoModelForImageTextToText.from_pretrained(location, dtype=dtype, **common)
    else:
        processor = None
        tokenizer = tf.AutoTokenizer.from_pretrained(location, **common)
        model = tf.AutoModelForCausalLM.from_pretrained(location, dtype=dtype, **common)
    model.to(device).eval().requires_grad_(False)
    text_cfg = getattr(hf_config, "text_config", None) or hf_config
    max_length = cfg.max_length or getattr(text_cfg, "max_position_embeddings", None) or 2048
    loaded_cfg = getattr(model.config, "text_config", None) or model.config
    attn_impl = getattr(loaded_cfg, "_attn_implementation", None) or "sdpa"
    meta = {"id": f"{cfg.package}/{cfg.gguf_file or cfg.path}" if cfg.package else cfg.path, "backend": "local",
            "package": cfg.package,
            "gguf_file": cfg.gguf_file, "revision": cfg.revision, "commit": commit,
            "dtype": cfg.dtype, "device": device, "kind": kind,
            "architecture": (hf_config.architectures or [type(model).__name__])[0],
            "parameters": sum(p.numel() for p in model.parameters()),
            "max_length": max_length, "load_seconds": round(time.time() - t0, 2)}
    return Loaded(model, tokenizer, processor, kind, device, max_length, attn_impl, meta)


def in_memory(model, tokenizer, cfg: ModelConfig) -> Loaded:
    """A model already in memory (a training loop's), as it is: its device, dtype and weights; nothing is copied or
    moved. A transformers decoder with `.model` and `.lm_head` (Llama, Qwen, SmolLM, ...) takes every fast path;
    any other module whose `forward(input_ids)` returns the logits of every position (a tensor, a tuple whose first
    item they are, or an object with `.logits`) is scored on the naive path: one right-padded sequence per choice,
    no attention mask (padding follows every scored position, so causal attention is exact)."""
    import torch

    hf = getattr(model, "config", None)
    plain = not (isinstance(model, torch.nn.Module) and hasattr(model, "model") and hasattr(model, "lm_head")
                 and hasattr(hf, "to_dict"))
    param = next(model.parameters())
    text = (hf.get_text_config() if hasattr(hf, "get_text_config") else hf) if hf is not None else None
    max_length = cfg.max_length or next((getattr(text, k) for k in ("max_position_embeddings", "n_positions",
                                                                     "block_size") if getattr(text, k, None)), None)
    if not max_length:
        raise ValueError(f"{type(model).__name__}: no context length found (model.config.max_position_embeddings, "
                         "n_positions or block_size); pass max_length=")
    attn_impl = "none" if plain else (getattr(text, "_attn_implementation", None) or "sdpa")
    meta = {"id": f"in-memory {type(model).__name__}", "backend": "in_memory", "package": None, "gguf_file": None,
            "revision": None, "commit": None, "dtype": str(param.dtype).removeprefix("torch."),
            "device": str(param.device), "kind": "causal_lm", "architecture": type(model).__name__,
            "parameters": sum(p.numel() for p in model.parameters()), "max_length": max_length, "load_seconds": 0.0}
    return Loaded(model, tokenizer, None, "causal_lm", str(param.device), max_length, attn_impl, meta, plain)
