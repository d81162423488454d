"""Builds tests/assets/tiny_vlm: a random-init Idefics3 (SmolVLM-style) vision-language model, under 1 MB.

Seeded and offline: `python scripts/make_tiny_vlm.py [OUT]`. A 2-layer Llama text model, a 1-layer SigLIP-style
vision encoder on 32x32 images (16 patches, pixel-shuffled to 4 image tokens), a byte-level BPE tokenizer trained
on the repository's fixture text, the PIL image processor (no torchvision) and SmolVLM's chat format.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPECIAL = ["<|endoftext|>", "<|pad|>", "<|im_start|>", "<end_of_utterance>", "<fake_token_around_image>",
           "<image>", "<global-img>"]
CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}:"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image>{% else %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}")


def corpus() -> list[str]:
    lines = ["Answer: A Answer: B Answer: C Answer: D"] * 50
    for f in sorted((ROOT / "tests" / "data").rglob("*.jsonl")):
        lines += f.read_text(encoding="utf-8").splitlines()
    return lines


def build(out: Path, seed: int = 0) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (Idefics3Config, Idefics3ForConditionalGeneration, Idefics3ImageProcessorPil,
                              Idefics3Processor, PreTrainedTokenizerFast)

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(corpus(), trainers.BpeTrainer(vocab_size=800, special_tokens=SPECIAL,
                                                          initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<end_of_utterance>", pad_token="<|pad|>",
                                        bos_token="<|im_start|>",
                                        extra_special_tokens={"fake_image_token": "<fake_token_around_image>",
                                                              "image_token": "<image>",
                                                              "global_image_token": "<global-img>"})
    size = {"longest_edge": 32}
    image_processor = Idefics3ImageProcessorPil(do_image_splitting=False, size=size, max_image_size=size,
                                                do_resize=True)
    processor = Idefics3Processor(image_processor=image_processor, tokenizer=tokenizer, image_seq_len=4,
                                  chat_template=CHAT_TEMPLATE)
    torch.manual_seed(seed)
    config = Idefics3Config(
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"), scale_factor=2, tie_word_embeddings=True,
        vision_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                       "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
        text_config={"model_type": "llama", "vocab_size": len(tokenizer), "hidden_size": 32,
                     "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                     "num_key_value_heads": 2, "max_position_embeddings": 1024,
                     "pad_token_id": tokenizer.pad_token_id, "bos_token_id": tokenizer.bos_token_id,
                     "eos_token_id": tokenizer.eos_token_id, "tie_word_embeddings": True})
    model = Idefics3ForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    (out / "README.md").write_text("Random-init Idefics3 for tests, made by scripts/make_tiny_vlm.py (seed "
                                   f"{seed}). Its answers are noise; it exercises the vision-language code path.\n")
    return out


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "tests" / "assets" / "tiny_vlm"
    build(target)
    total = sum(p.stat().st_size for p in target.iterdir())
    print(json.dumps({"out": str(target), "bytes": total}))
