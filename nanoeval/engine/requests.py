"""What benchmarks hand the engine: log-likelihood requests (a context, its continuations) and generation requests."""
from __future__ import annotations

from dataclasses import dataclass, field


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
