"""Log-likelihood scoring: each request (a context, its continuations) laid out as a unit, the context once and
each continuation a branch under a tree attention mask; units packed into rows; a shared few-shot prefix's KV cache
reused; log-probabilities only where a continuation token is scored. The naive path (one right-padded sequence per
continuation) is the reference and takes what does not fit."""
from __future__ import annotations

from dataclasses import dataclass

from nanoeval.engine.requests import LLRequest


@dataclass
class _Unit:
    """A request laid out for one stretch of a packed row: the context tokens its choices share, then each choice's
    branch (the rest of its own context, if any, and its continuation; all but the last token) that sees the shared
    context and itself only. targets[k] = (offset in the unit, token) of each scored token of choice k (the last
    scored[k] of its branch): a token is predicted at the position before it, the branch's first at the shared
    context's last position."""
    ctx: list[int]
    conts: list[list[int]]
    scored: list[int]
    start: int = 0  # position of the first context token (the length of a cached prefix before it)

    def __post_init__(self):
        self.ids, self.branch = list(self.ctx), [0] * len(self.ctx)
        self.targets = []
        for k, (cont, n) in enumerate(zip(self.conts, self.scored), 1):
            base = len(self.ids)
            at = [len(self.ctx) - 1] + [base + m for m in range(len(cont) - 1)]  # where cont[m] is predicted
            self.targets.append([(at[m], cont[m]) for m in range(len(cont) - n, len(cont))])
            self.ids += cont[:-1]
            self.branch += [k] * (len(cont) - 1)
        self.pos = list(range(self.start, self.start + len(self.ctx)))
        for cont in self.conts:
            self.pos += range(self.start + len(self.ctx), self.start + len(self.ctx) + len(cont) - 1)

    @property
    def branched(self) -> bool:
        """Whether any branch has tokens of its own in the row (more than one token): then it needs the mask."""
        return any(self.branch)

    def after(self, n: int) -> "_Unit":
        """The same unit with its first n context tokens left to a cached prefix."""
        return _Unit(self.ctx[n:], self.conts, self.scored, self.start + n)


class _Scores(dict):
    """(request, continuation) -> log-likelihood, filled batch by batch. With `done`, each request is handed over
    as soon as its last continuation is scored: done([(request, its scores, truncated or not), ...]), once per
    batch (once per request: a batch retried after CUDA out-of-memory hands nothing over twice), so a look-ahead
    journals its examples while the rest is still being scored. `cut` is final before any batch runs."""

    def __init__(self, requests: list[LLRequest], cut: list[bool], done=None):
        super().__init__()
        self.sizes, self.cut, self.done = [len(r.pairs()) for r in requests], cut, done
        self.left = list(self.sizes)

    def __setitem__(self, key: tuple[int, int], value: float) -> None:
        self.update([(key, value)])

    def update(self, pairs) -> None:
        pairs = dict(pairs)
        fresh = [key for key in pairs if key not in self]
        super().update(pairs)
        if self.done is None:
            return
        finished = []
        for i, _ in fresh:
            self.left[i] -= 1
            if not self.left[i]:
                finished.append(i)
        if finished:
            self.done([(i, [self[i, k] for k in range(self.sizes[i])], self.cut[i]) for i in finished])


def tree_mask(owner, branch, prefix, attn_impl: str, dtype):
    """[rows, 1, query, key]: a token sees earlier tokens of its own unit's context and of its own branch
    (padding sees padding: no empty rows). Cached prefix positions come first: `prefix` of them all visible (an
    int), or those marked in a [rows, query, prefix position] bool tensor."""
    import torch

    width = owner.shape[1]
    causal = torch.ones(width, width, dtype=torch.bool, device=owner.device).tril()
    mask = (owner[:, :, None] == owner[:, None, :]) & causal & (
        (branch[:, None, :] == 0) | (branch[:, :, None] == branch[:, None, :]))
    if isinstance(prefix, int) and prefix:
        mask = torch.cat([mask.new_ones(owner.shape[0], width, prefix), mask], -1)
    elif not isinstance(prefix, int):
        mask = torch.cat([prefix, mask], -1)
    mask = mask[:, None]
    if attn_impl == "eager":  # eager attention adds the mask
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(
            ~mask, torch.finfo(dtype).min)
    return mask


def right_pad(seqs: list[list[int]], pad: int | None, device: str):
    """Token ids padded on the right to the longest, and their attention mask."""
    import torch

    width = max(len(s) for s in seqs)
    pad = pad if pad is not None else 0
    ids = torch.tensor([s + [pad] * (width - len(s)) for s in seqs], device=device)
    mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs], device=device)
    return ids, mask


def sliding_window(config) -> int | None:
    """The attention window of a model with sliding-window layers (Mistral, Gemma 2/3, ...), else None."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    window = getattr(text, "sliding_window", None)
    layer_types = getattr(text, "layer_types", None)
    if layer_types is not None and not any("sliding" in t for t in layer_types):
        return None  # a window in the config that no layer uses
    return None if getattr(text, "use_sliding_window", True) is False else window


class LogLikelihoods:
    """Scores log-likelihood requests with an Engine's model, tokenization, batcher and counters."""

    def __init__(self, engine):
        self.e = engine
        # The fast paths hand the model their own masks (or caches), which transformers does not narrow to a
        # sliding window; so a sequence that reaches the window goes the naive path, where transformers does.
        self.window = None if engine.plain else sliding_window(engine.model.config)

    def __call__(self, requests: list[LLRequest], naive: bool = False,
                 done=None) -> tuple[list[list[float]], list[bool]]:
        """Summed log-probability of each continuation given its context, per request, and whether the request's
        prompt was left-truncated to fit the model. `done`: see _Scores."""
        with self.e.no_grad():
            return self._score(requests, naive, done)

    def _score(self, requests: list[LLRequest], naive: bool, done=None) -> tuple[list[list[float]], list[bool]]:
        encoded = self.e.encode_requests(requests)
        cut = [False] * len(requests)
        scores = _Scores(requests, cut, done)  # (request, continuation) -> log-likelihood
        units: dict[tuple[int, int], _Unit] = {}   # (request, first continuation) -> a context and continuations
        rest = []
        for i, (ctx, conts, scored) in enumerate(encoded):
            length = len(ctx) + max(map(len, conts), default=1) - 1
            if naive or self.e.plain or not ctx or not all(scored) or length > self.e.max_length or \
                    (self.window and length >= self.window):
                rest.append(i)  # over-long: the naive path left-truncates each sequence (and keeps a window); also
                #                 choices whose contexts share no token
            elif self.e.settings.share_context:
                units[i, 0] = _Unit(ctx, conts, scored)
            else:
                units.update({(i, k): _Unit(ctx, [c], [n]) for k, (c, n) in enumerate(zip(conts, scored))})
        by_prefix: dict[str, list] = {}
        if self.e.settings.prefix_cache and not self.e.cfg.chat_template:
            for key in units:
                if requests[key[0]].prefix:
                    by_prefix.setdefault(requests[key[0]].prefix, []).append(key)
        per_row: dict[tuple[int, int], tuple[int, ...]] = {}  # unit -> its short prefix's tokens
        for prefix, keys in by_prefix.items():
            p_ids = self._prefix_ids(prefix, [units[key].ctx for key in keys])
            if p_ids is None:
                continue
            if all(len(units[key].ids) >= 2 * len(p_ids) for key in keys):
                # A short prefix (0-shot MMLU's header): batching the prefix's units alone would lose the sort
                # across cases. Where rows are packed (not on a GPU), each row attends to the cached prefixes of
                # its own units; else the prefix is just computed in every row.
                if self.e.pack_branchless:
                    per_row.update({key: p_ids for key in keys})
                continue
            # a long prefix (a subject's shots): computed once, its units batched alone after it
            self._score_units({key: units.pop(key).after(len(p_ids)) for key in keys}, scores,
                              self._prefix_cache(p_ids))
        if per_row:
            self._score_units({key: units.pop(key).after(len(per_row[key])) for key in per_row}, scores,
                              per_row=per_row)
        if self.e.pack_branchless:
            self._score_units(units, scores)
        else:  # (a GPU) units without branches unpacked under the plain causal mask, the others packed apart
            plain = {key: unit for key, unit in units.items() if not unit.branched}
            self._score_units(plain, scores)
            self._score_units({key: unit for key, unit in units.items() if key not in plain}, scores)
        self._score_naive(encoded, rest, scores, cut)
        return [[scores[i, k] for k in range(len(req.pairs()))] for i, req in enumerate(requests)], cut

    def _hidden(self, ids, mask, **kw):
        """Last hidden states of the language model (logits are computed only where needed)."""
        return self.e.model.model(input_ids=ids, attention_mask=mask, **kw)

    def _logprobs(self, hidden):
        return self.e.model.lm_head(hidden).float().log_softmax(-1)

    def _prefix_ids(self, prefix: str, contexts: list[list[int]]) -> tuple[int, ...] | None:
        """The prefix's tokens, or None unless every context starts with them (so the result is exactly the same)."""
        p_ids = tuple(self.e.encode(prefix.rstrip()))  # cut before trailing space: no token merges across the cut
        n = len(p_ids)
        if n < 2 or any(len(c) <= n or tuple(c[:n]) != p_ids for c in contexts):
            return None
        return p_ids

    def _prefix_cache(self, p_ids: tuple[int, ...]):
        """The key/value cache of a shared prefix (one subject's shots), computed once and kept while the same
        prefix comes back."""
        import torch

        if p_ids not in self.e.prefix_caches:
            self.e.prefix_caches.clear()  # one prefix at a time: bounded memory
            ids = torch.tensor([p_ids], device=self.e.device)
            self.e.prefix_caches[p_ids] = self._hidden(ids, torch.ones_like(ids), use_cache=True).past_key_values
        return self.e.prefix_caches[p_ids]

    def _prefix_bank(self, prefixes: list[tuple[int, ...]]) -> list[tuple]:
        """Keys and values of several prefixes at once, per layer [prefix, kv heads, position, head dim]: forward
        passes of as many prefixes as the token budget holds, padded on the right under the plain causal mask
        (exact at every real position)."""
        import torch

        width = max(map(len, prefixes))
        step, parts = max(1, self.e.batcher.budget // width), []
        for s in range(0, len(prefixes), step):
            ids = torch.tensor([list(p) + [0] * (width - len(p)) for p in prefixes[s: s + step]], device=self.e.device)
            parts.append(self._hidden(ids, None, use_cache=True).past_key_values.layers)
        return [(torch.cat([part[i].keys for part in parts]), torch.cat([part[i].values for part in parts]))
                for i in range(len(parts[0]))]

    def _score_units(self, units: dict, scores: dict, prefix_cache=None, per_row: dict | None = None) -> None:
        """Each unit's context once, each continuation a branch that sees the context and itself (a tree
        attention mask), units packed into rows; log-probabilities only at the continuations' targets, summed
        in fp64. With a prefix cache, every row also attends to the prefix's keys and values. With `per_row`
        (unit -> its prefix's tokens), each row attends to the keys and values of its own units' prefixes, laid
        side by side in front of it, each unit to its own prefix only."""
        import copy

        import torch
        from transformers import DynamicCache

        keys, dev = list(units), self.e.device
        n_prefix = prefix_cache.get_seq_length() if prefix_cache is not None else 0
        if per_row:
            bank_ids = list(dict.fromkeys(per_row.values()))
            bank, number = self._prefix_bank(bank_ids), {p: b for b, p in enumerate(bank_ids)}
            unit_prefix = [number[per_row[key]] for key in keys]

        def row_prefixes(rows: list[list[int]], owner):
            """Each row's cache (its units' prefixes side by side, padded on the right) and what each query sees."""
            lists = [list(dict.fromkeys(unit_prefix[i] for i in row)) for row in rows]
            width = max(sum(len(bank_ids[b]) for b in lst) for lst in lists)
            which, at, seg = [], [], []  # per cache position: prefix, position in it, segment (-1: padding)
            for lst in lists:
                n = 0
                for j, b in enumerate(lst):
                    which += [b] * len(bank_ids[b])
                    at += range(len(bank_ids[b]))
                    seg += [j] * len(bank_ids[b])
                    n += len(bank_ids[b])
                which, at, seg = which + [0] * (width - n), at + [0] * (width - n), seg + [-1] * (width - n)
            which, at, seg = (torch.tensor(x, device=dev).view(len(rows), width) for x in (which, at, seg))
            seg_of_unit = {i: lst.index(unit_prefix[i]) for row, lst in zip(rows, lists) for i in row}
            query_seg = torch.tensor([[seg_of_unit.get(i, -2) for i in r] for r in owner.tolist()], device=dev)
            cache = DynamicCache(ddp_cache_data=[(k[which, :, at].transpose(1, 2), v[which, :, at].transpose(1, 2))
                                                 for k, v in bank])
            return cache, query_seg[:, :, None] == seg[:, None, :]

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
            cache, prefix = None, n_prefix
            if prefix_cache is not None:  # the model appends to the cache it is given: use a copy
                cache = copy.deepcopy(prefix_cache)
                cache.batch_repeat_interleave(len(rows))
            elif per_row:
                cache, prefix = row_prefixes(rows, owner)
            # One branchless unit per row, padded on the right: the plain causal mask is exact (padding comes after
            # every scored position), and SDPA can take its flash kernel, which a custom mask rules out. No position
            # ids either: the padding's would restart at 0, which transformers reads as packed rows (and masks).
            if cache is None and all(len(row) == 1 and not units[keys[row[0]]].branched for row in rows):
                mask, pos = None, None
            else:
                mask = tree_mask(owner, branch, prefix, self.e.attn_impl, self.e.model.dtype)
            hidden = self._hidden(ids, mask, position_ids=pos, cache=cache, use_cache=False).last_hidden_state
            at = torch.tensor(where, device=dev)
            lp = self._logprobs(hidden[at[:, 0], at[:, 1]])
            picked = lp.gather(-1, torch.tensor(targets, device=dev)[:, None])[:, 0].double()
            index = {s: n for n, s in enumerate(dict.fromkeys(slot))}
            sums = torch.zeros(len(index), dtype=torch.float64, device=dev).index_add_(
                0, torch.tensor([index[s] for s in slot], device=dev), picked).tolist()
            scores.update(zip(index, sums))

        pack = self.e.packing and (self.e.pack_branchless or prefix_cache is not None
                                   or any(u.branched for u in units.values()))
        if keys:
            self.e.batcher.run({i: len(units[key].ids) for i, key in enumerate(keys)}, run, pack)

    def _score_naive(self, encoded, idx: list[int], scores: dict, cut: list[bool]) -> None:
        """Each choice (context, continuation) as its own right-padded sequence: the reference path. cut[i]: request
        i was left-truncated (counted once per prompt, not per choice)."""
        import torch

        items = []  # (request index, choice index, input ids, scored ids)
        for i in idx:
            ctx, conts, scored = encoded[i]
            for j, (cont, n) in enumerate(zip(conts, scored)):
                whole = ctx + cont
                cut[i] |= len(whole) - 1 > self.e.max_length
                items.append((i, j, whole[-(self.e.max_length + 1):][:-1], cont[len(cont) - n:]))

        def run(rows):
            batch = [k for (k,) in rows]
            ids, mask = right_pad([items[k][2] for k in batch], self.e.tokenizer.pad_token_id, self.e.device)
            if self.e.plain:  # forward(ids) -> every position's logits; right padding needs no mask (causal)
                out = self.e.model(ids)
                logits = out.logits if hasattr(out, "logits") else out[0] if isinstance(out, (tuple, list)) else out
            else:
                hidden = self._hidden(ids, mask).last_hidden_state
            for row, k in enumerate(batch):
                i, j, inp, cont = items[k]
                at = slice(len(inp) - len(cont), len(inp))
                lp = logits[row, at].float().log_softmax(-1) if self.e.plain else self._logprobs(hidden[row, at])
                scores[i, j] = lp.gather(-1, torch.tensor(cont, device=self.e.device)[:, None]).double().sum().item()

        self.e.batcher.run({k: len(items[k][2]) for k in range(len(items))}, run)
