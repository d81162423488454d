"""What every engine shares: the prompt text (chat template or not), tokenization as lm-evaluation-harness does it,
and log-likelihood scores kept from a look-ahead until a case asks for them. Each engine (local: the model in this
process; served.py: a model behind an OpenAI-compatible server) supplies `_loglikelihoods` and `generate`."""
from __future__ import annotations

import threading

from nanoeval.engine.requests import Encoded, GenRequest, LLRequest


class EngineBase:
    """Needs `cfg` (ModelConfig), `tokenizer`, `processor` (or None), `counts`, `noted` and `_loglikelihoods(requests,
    naive)` -> (scores per request, truncated or not per request)."""

    def count(self, per_request: list[dict[str, int]]) -> None:
        """One engine call's counters (prompts truncated, generations cut), one dict per request in the call's
        order: added to `counts` and, while the runner scores a chunk (`noted` is a list, not None), kept in order
        in `noted`, so it gives each example its own (lookahead.score_chunk) and a smaller selection later counts
        only what it selects."""
        for c in per_request:
            for k, v in c.items():
                self.counts[k] += v
        if self.noted is not None:
            self.noted.extend(per_request)

    def _init_ahead(self) -> None:
        self.ahead: dict[tuple, list[tuple[list[float], bool]]] = {}  # prescore(): request -> [(scores, truncated)]
        self.ahead_used = 0  # requests answered from `ahead` (the runner notes them per case)
        self._ahead_lock = threading.Lock()

    # ------------------------------------------------------------------------------------------------ tokenization
    def encode(self, text: str) -> list[int]:
        return self.encode_many([text])[0]

    def encode_many(self, texts: list[str]) -> list[list[int]]:
        """Token ids (batched calls: fast tokenizers work in parallel); special tokens as the tokenizer adds
        them by default, unless model.add_bos_token says. A text that already starts with the BOS token (a chat
        template that writes `{{ bos_token }}`) gets no special tokens at all, so never a second BOS: lm-eval's
        `has_bos_prefix` check (HFLM.tok_encode / tok_batch_encode)."""
        if not texts:
            return []
        bos, bos_text = self.tokenizer.bos_token_id, self.tokenizer.bos_token
        has_bos = [bool(bos_text) and t.startswith(bos_text) for t in texts]
        default = self.cfg.add_bos_token is None  # the tokenizer's own special tokens
        ids: list = [None] * len(texts)
        for special in (True, False):
            idx = [i for i, h in enumerate(has_bos) if (default and not h) == special]
            if idx:
                got = self.tokenizer([texts[i] for i in idx], add_special_tokens=special)["input_ids"]
                for i, x in zip(idx, got):
                    ids[i] = x
        if self.cfg.add_bos_token and bos is not None:
            ids = [x if h else [bos] + x for x, h in zip(ids, has_bos)]
        return ids

    def encode_request(self, req: LLRequest) -> Encoded:
        return self.encode_requests([req])[0]

    def encode_requests(self, requests: list[LLRequest]) -> list[Encoded]:
        """Each request's tokens (Encoded). A choice is tokenized as lm-evaluation-harness does: context and
        continuation jointly, the continuation being the tail past the context's own tokens; trailing spaces of the
        context move to the continuation ("Answer: "+"A" is scored as "Answer:"+" A"); an empty context is scored
        after a single BOS/EOS token, as lm-eval does. The choices of a request share the context tokens they have
        in common (all of them, unless the choices vary the context). A continuation longer than max_length alone
        is refused (ValueError), as lm-eval refuses it."""
        texts: dict[str, int] = {}  # each distinct context once: (chat template,) rstrip, encode
        for req in requests:
            for context, _ in req.pairs():
                texts.setdefault(context, len(texts))
        ctxs, moved = [], []
        for context in texts:
            ctx = self.prompt_text(GenRequest(context))
            n = len(ctx) - len(ctx.rstrip())
            ctxs.append(ctx[:-n] if n else ctx)
            moved.append(ctx[-n:] if n else "")
        ctx_ids = self.encode_many(ctxs)
        pairs = [(texts[context], cont) for req in requests for context, cont in req.pairs()]
        wholes = self.encode_many([ctxs[c] + moved[c] + k for c, k in pairs if ctxs[c]])
        alone = [moved[c] + k for c, k in pairs if not ctxs[c]]
        conts_alone = self.tokenizer(alone, add_special_tokens=False)["input_ids"] if alone else []
        # lm-eval's prefix_token_id: the BOS token, else EOS (`is not None`: a BOS id of 0 is a BOS)
        start = self.tokenizer.bos_token_id if self.tokenizer.bos_token_id is not None else self.tokenizer.eos_token_id
        whole, single, out, at = iter(wholes), iter(conts_alone), [], 0
        for req in requests:
            choices = []  # (context tokens, continuation tokens) per choice
            for c, k in pairs[at: at + len(req.pairs())]:
                if ctxs[c]:
                    choices.append((ctx_ids[c], next(whole)[len(ctx_ids[c]):]))
                else:  # a continuation that starts with the start token has it as its context (lm-eval): the same
                    x = next(single)
                    choices.append(([start], x[1:] if x[:1] == [start] else x))
                # lm-eval asserts this too: the continuation alone must fit the model's input (max_length + 1
                # tokens, its first predicted from one context token); a longer one cannot be scored
                if self.max_length and len(choices[-1][1]) > self.max_length:
                    raise ValueError(f"a continuation of {len(choices[-1][1])} tokens ({k[:40]!r}...) is longer "
                                     f"than the model's max_length ({self.max_length}): it cannot be scored")
            at += len(choices)
            shared = _common_prefix([ctx for ctx, _ in choices])
            out.append(Encoded(shared, [ctx[len(shared):] + cont for ctx, cont in choices],
                               [len(cont) for _, cont in choices]))
        return out

    # ------------------------------------------------------------------------------------------------ scoring
    def loglikelihoods(self, requests: list[LLRequest], naive: bool = False) -> list[list[float]]:
        """Summed log-probability of each continuation given its context, per request (loglik.py). Requests
        scored ahead (`prescore`) are answered from what was kept, each once; the rest are scored now."""
        with self._ahead_lock:  # a served engine's cases score on several threads
            kept = [_take(self.ahead, r.key()) if not naive else None for r in requests]
            self.ahead_used += sum(k is not None for k in kept)
        fresh = iter(zip(*self._loglikelihoods([r for r, k in zip(requests, kept) if k is None], naive)))
        out, cuts = [], []
        for k in kept:
            lls, cut = k if k is not None else next(fresh)
            out.append(lls)
            cuts.append({"truncated_prompts": int(cut)})
        self.count(cuts)  # counted in the chunk whose records use the scores
        return out

    def generate_scored(self, requests: list[GenRequest], max_new_tokens: int,
                        gold: list[LLRequest]) -> tuple[list[str], list[list[float]]]:
        """Each request's response (`generate`) and the log-likelihoods of its gold request (`gold`: one per
        generation, over the same prompt: a generative task's bits per byte). The local engine scores the gold in
        the generation's own prefill; here they are two calls."""
        return self.generate(requests, max_new_tokens), self.loglikelihoods(gold)

    def token_counts(self, requests: list[LLRequest]) -> list[list[int]]:
        """The tokens each choice's continuation is scored over (its tail in the joint tokenization), per request:
        what acc_per_token divides by."""
        return [e.scored for e in self.encode_requests(requests)]

    def prescore(self, requests: list[LLRequest], answered=None) -> None:
        """Score requests now, across cases, and keep each result until `loglikelihoods` is asked for it (a request
        given twice is kept twice): the runner hands over the requests of the cases queued on this process, so the
        batcher sorts them all by length together instead of draining after each small case. After each batch,
        `answered(indices)` gets the requests whose results it completed, so their examples can be journaled at
        once (lookahead.py): a kill keeps everything scored so far."""
        def keep(finished: list[tuple[int, list[float], bool]]) -> None:
            with self._ahead_lock:
                for i, lls, cut in finished:
                    self.ahead.setdefault(requests[i].key(), []).append((lls, cut))
            if answered is not None:
                answered([i for i, _, _ in finished])

        self._loglikelihoods(requests, done=keep)

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def shown_prompt(self, req: LLRequest | GenRequest) -> str | list[str]:
        """The text a request asks the model, for predictions.jsonl (report.prompts): a log-likelihood request's
        context (one per choice where the choices vary it), a generation's user turn, each through the chat template
        where it applies (images: their slots)."""
        if isinstance(req, GenRequest):
            return self.prompt_text(req)
        if isinstance(req.context, list):
            return [self.prompt_text(GenRequest(c)) for c in req.context]
        return self.prompt_text(GenRequest(req.context))

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


def _take(kept: dict, key: tuple):
    """One kept result for `key` (the oldest), or None."""
    results = kept.get(key)
    if not results:
        return None
    if len(results) == 1:
        del kept[key]
    return results.pop(0)


def _common_prefix(seqs: list[list[int]]) -> list[int]:
    first = seqs[0]
    n = len(first)
    for seq in seqs[1:]:
        n = min(n, len(seq))
        n = next((i for i in range(n) if seq[i] != first[i]), n)
    return first[:n]
