"""What benchmarks hand the engine: log-likelihood requests (choices, each a context and a continuation) and
generation requests."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


@dataclass
class LLRequest:
    """Choices ranked by log-likelihood. Usually one context and one continuation per choice (choice k: `context`
    then `continuations[k]`); with a list of contexts, the choices vary the context and share one continuation
    (WinoGrande's partial evaluation: choice k is `context[k]` then `continuations[0]`). Either way a choice's score
    is the continuation's log-likelihood after its context."""
    context: str | list[str]
    continuations: list[str]
    prefix: str = ""  # a leading part of every context shared by many requests (few-shot shots): its KV cache reused

    def __post_init__(self):
        if isinstance(self.context, list) and len(self.continuations) != 1:
            raise ValueError("several contexts share exactly one continuation")

    def pairs(self) -> list[tuple[str, str]]:
        """(context, continuation) of each choice, in order."""
        if isinstance(self.context, list):
            return [(c, self.continuations[0]) for c in self.context]
        return [(self.context, c) for c in self.continuations]

    def key(self) -> tuple:
        """Everything of a request that decides its scores (the prefix only decides what is cached)."""
        return tuple(self.pairs())


class Encoded(NamedTuple):
    """A request's tokens as the engine lays it out: `ctx`, the context tokens every choice shares, then per choice
    a branch `conts[k]` (the rest of its own context, if any, then its continuation), of whose tokens the last
    `scored[k]` (the continuation's) are scored."""
    ctx: list[int]
    conts: list[list[int]]
    scored: list[int]


@dataclass
class GenRequest:
    """One greedy generation: the response is the text generated before the first stop string (`until`, found in
    the decoded text wherever the tokens split it), an end-of-sequence token or max_new_tokens tokens."""
    text: str                                   # the user turn's text
    images: list = field(default_factory=list)  # PIL images, attached after the text in this order
    chat: bool | None = None                    # wrap in the chat template (None: model.chat_template)
    until: tuple[str, ...] = ()                 # stop strings; the response ends before the earliest one

    def __post_init__(self):
        if isinstance(self.until, str):  # a bare string would stop at each of its characters
            raise TypeError(f"until is a tuple of stop strings, got the string {self.until!r}")
        self.until = tuple(self.until)
        if not all(isinstance(s, str) and s for s in self.until):
            raise ValueError(f"every stop string must be a non-empty string, got {self.until!r}")

    def cut(self, text: str) -> tuple[str, bool]:
        """`text` cut at the stop strings as lm-eval's generate_until cuts it (`for term in until: s =
        s.split(term)[0]`: in order, which differs from cutting at the earliest only where one stop string overlaps
        the start of another), and whether a stop string was met."""
        whole = text
        for stop in self.until:
            text = text.split(stop)[0]
        return text, text != whole
