"""The engine's fast paths (shared context, packing, prefix cache) equal the naive one-sequence-per-continuation
computation, each switch on and off; batch size changes nothing."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from nanoeval.config import EngineConfig, ModelConfig
from nanoeval.engine import Engine, GenRequest, LLRequest
from nanoeval.benchmarks.mmlu import fewshot_prefix as mmlu_fewshot_prefix, prompt as mmlu_prompt
from tests.conftest import ROOT


def make(path, **engine) -> Engine:
    return Engine(ModelConfig(path=str(path)), EngineConfig(**engine), ROOT)


def naive_loglikelihood(engine: Engine, context: str, continuation: str) -> float:
    """Textbook computation, independent of the engine's batching: full logits, log_softmax, sum."""
    ctx_ids, (cont_ids,), _ = engine.encode_request(LLRequest(context, [continuation]))
    ids = torch.tensor([ctx_ids + cont_ids])
    with torch.no_grad():
        logp = engine.model(ids).logits.float().log_softmax(-1)[0]
    return sum(logp[len(ctx_ids) - 1 + k, t].item() for k, t in enumerate(cont_ids))


MMLU_REQUESTS = [LLRequest(mmlu_prompt("anatomy", q, ["Heart", "Liver", "Lungs", "Skin"], []),
                           [" A", " B", " C", " D"])
                 for q in ["Which organ pumps blood?", "Which organ filters blood to make urine and is long?",
                           "Where does gas exchange happen?"]]
ENDING_REQUESTS = [LLRequest("Which organ pumps blood through the body? The answer is",
                             [" the heart.", " the liver, which also filters", " lungs", " skin and bone"]),
                   LLRequest("A river delta forms where a river meets", [" the sea", " a mountain range far away",
                                                                         " ice", " a desert of sand"])]


def test_one_token_continuations_match_naive(tiny_lm):
    engine = make(tiny_lm)
    assert all(len(c) == 1 for r in MMLU_REQUESTS for c in engine.encode_request(r)[1]), "fixture: one token each"
    fast = engine.loglikelihoods(MMLU_REQUESTS)
    for req, lls in zip(MMLU_REQUESTS, fast):
        for cont, ll in zip(req.continuations, lls):
            assert ll == pytest.approx(naive_loglikelihood(engine, req.context, cont), abs=1e-4)


@pytest.mark.parametrize("packing", [False, True])
def test_branchless_units_unpacked_go_under_the_plain_causal_mask(tiny_lm, monkeypatch, packing):
    """A context scored at its last position only (MMLU's one-token letters), one per row and padded on the right,
    needs no mask: SDPA's is_causal (its flash kernel). That is the GPU's way (Engine.pack_branchless is off on
    CUDA), and a CPU's without packing; packed on a CPU, and for continuations of several tokens, the tree mask.
    Every way equals the naive path."""
    seen = []
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def spy(*args, **kw):
        seen.append((kw.get("attn_mask") is None, kw.get("is_causal")))
        return sdpa(*args, **kw)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    long = "The heart pumps blood through the body, and the lungs take in air. " * 8 + "Answer:"
    branchless = [LLRequest(long, [" A", " B"]), *MMLU_REQUESTS]  # the long one leaves room for short ones in its row
    engine = make(tiny_lm, packing=packing, token_budget=600)
    assert engine.pack_branchless == packing  # a CPU
    assert all(len(c) == 1 for r in branchless for c in engine.encode_request(r)[1])
    fast = engine.loglikelihoods(branchless)
    if packing:  # a batch whose rows hold several units is masked (a later one of single units need not be)
        assert (False, False) in seen, seen
    else:
        assert seen and set(seen) == {(True, True)}, seen
    seen.clear()
    branched = engine.loglikelihoods(ENDING_REQUESTS)
    assert seen and set(seen) == {(False, False)}, seen
    monkeypatch.undo()
    for got, ref in zip(fast + branched, engine.loglikelihoods(branchless + ENDING_REQUESTS, naive=True)):
        assert got == pytest.approx(ref, abs=1e-4)


def test_as_on_a_gpu_branchless_units_stay_unmasked_beside_branched_ones(tiny_lm, monkeypatch):
    """One call (a look-ahead) holding MMLU's letters and HellaSwag's endings, with branchless units not packed
    (a GPU): the letters still go under the plain causal mask, the endings under the tree mask; all equal naive."""
    seen = []
    sdpa = torch.nn.functional.scaled_dot_product_attention
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention",
                        lambda *a, **kw: seen.append(kw.get("attn_mask") is None) or sdpa(*a, **kw))
    engine = make(tiny_lm)
    engine.pack_branchless = False  # what Engine sets on CUDA
    got = engine.loglikelihoods(MMLU_REQUESTS + ENDING_REQUESTS)
    assert set(seen) == {True, False}, seen
    monkeypatch.undo()
    for lls, ref in zip(got, engine.loglikelihoods(MMLU_REQUESTS + ENDING_REQUESTS, naive=True)):
        assert lls == pytest.approx(ref, abs=1e-4)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_short_prefixes_are_cached_per_row_and_match_naive(tiny_lm, monkeypatch, attn):
    """0-shot MMLU: each subject's header is a short prefix. Packed (a CPU), its keys and values are computed once
    for all subjects and each row attends to the prefixes of its own units, which may be of different subjects; the
    rows carry only what follows the headers. Unpacked (as on a GPU), headers are computed in each row under the
    plain causal mask. Both equal the naive path."""
    subjects = ["anatomy", "astronomy", "virology"]
    requests = [LLRequest(mmlu_prompt(s, q, ["Heart", "Liver", "Lungs", "Skin"], []), [" A", " B", " C", " D"],
                          mmlu_fewshot_prefix(s, []))
                for s in subjects for q in ["Which organ pumps blood?", "Where does gas exchange happen?",
                                            "Which organ, in a body at rest after a long walk, " * 4 + "is it?"]]
    for packing in (True, False):
        engine = make(tiny_lm, packing=packing, token_budget=400)
        engine.model.set_attn_implementation(attn)
        engine.attn_impl = attn
        banks, calls = [], []
        bank, hidden = engine._loglikelihoods._prefix_bank, engine._loglikelihoods._hidden
        monkeypatch.setattr(engine._loglikelihoods, "_prefix_bank", lambda p: banks.append(len(p)) or bank(p))
        monkeypatch.setattr(engine._loglikelihoods, "_hidden", lambda ids, mask, **kw: calls.append(
            (ids.shape, mask if mask is None else mask.shape, kw.get("cache") is not None)) or hidden(ids, mask, **kw))
        got = engine.loglikelihoods(requests)
        if packing:
            assert banks == [3], banks  # the three headers, in one pass
            scored = [c for c in calls if c[2]]
            header = {s: len(engine.encode(mmlu_fewshot_prefix(s, []).rstrip())) for s in subjects}
            bodies = [len(engine.encode_request(r)[0]) - header[s] for r, s in zip(requests, sorted(subjects * 3))]
            assert scored and max(ids[1] for ids, _, _ in scored) == max(bodies), calls  # rows: no header inside
            # in front of each row, the headers of its units: in some row, of two subjects or more
            assert all(mask[-1] > ids[1] for ids, mask, _ in scored), calls
            assert max(mask[-1] - ids[1] for ids, mask, _ in scored) > max(header.values()), calls
            # a token budget too small for all headers at once: one pass each, the same keys and values
            ids = [tuple(engine.encode(mmlu_fewshot_prefix(s, []).rstrip())) for s in subjects]
            whole, calls[:] = bank(ids), []
            engine.batcher.budget = max(header.values())
            apart = bank(ids)
            assert len(calls) == 3
            assert all(torch.allclose(x, y, atol=1e-5) for a, b in zip(whole, apart) for x, y in zip(a, b))
        else:
            assert banks == [] and all(mask is None for _, mask, _ in calls), calls
        ref = engine.loglikelihoods(requests, naive=True)
        for a, b in zip(got, ref):
            assert a == pytest.approx(b, abs=1e-4)
            assert max(range(4), key=a.__getitem__) == max(range(4), key=b.__getitem__)


@pytest.mark.parametrize("share,packing", [(True, True), (True, False), (False, True), (False, False)])
def test_shared_context_path_matches_naive(tiny_lm, share, packing):
    engine = make(tiny_lm, share_context=share, packing=packing)
    assert any(len(c) > 1 for r in ENDING_REQUESTS for c in engine.encode_request(r)[1])
    got = engine.loglikelihoods(ENDING_REQUESTS + MMLU_REQUESTS)
    ref = engine.loglikelihoods(ENDING_REQUESTS + MMLU_REQUESTS, naive=True)
    for req, lls, ref_lls in zip(ENDING_REQUESTS, got, ref):
        for cont, ll, r in zip(req.continuations, lls, ref_lls):
            assert ll == pytest.approx(naive_loglikelihood(engine, req.context, cont), abs=1e-4)
            assert ll == pytest.approx(r, abs=1e-4)
    for lls, ref_lls in zip(got[len(ENDING_REQUESTS):], ref[len(ENDING_REQUESTS):]):
        assert lls == pytest.approx(ref_lls, abs=1e-4)


SENTENCE = "The trophy would not fit into the brown suitcase because the "
CONTEXT_REQUESTS = [  # WinoGrande's partial evaluation: the option fills the blank, the rest is the continuation
    LLRequest([SENTENCE + "trophy", SENTENCE + "suitcase"], [" was far too large for it."]),
    LLRequest(["Ann thanked Beth because Ann", "Ann thanked Beth because Beth"], [" had helped."]),
    LLRequest(["Kim", "Lee"], [" won the race easily on Sunday."])]  # contexts with no token in common


@pytest.mark.parametrize("share,packing", [(True, True), (True, False), (False, True), (False, False)])
def test_several_contexts_share_one_continuation(tiny_lm, share, packing):
    """Choices that vary the context (WinoGrande): each scores the shared continuation after its own context,
    exactly as a request of that context alone; the tokens the contexts share are laid out once."""
    engine = make(tiny_lm, share_context=share, packing=packing)
    first = engine.encode_request(CONTEXT_REQUESTS[0])
    sentence = engine.encode(SENTENCE.rstrip())
    assert first.ctx[:len(sentence) - 1] == sentence[:-1] and len(first.ctx) >= len(sentence) - 1
    assert [len(c) > n for c, n in zip(first.conts, first.scored)] == [True, True]  # each branch: its own context
    got = engine.loglikelihoods(CONTEXT_REQUESTS + ENDING_REQUESTS)
    for req, lls in zip(CONTEXT_REQUESTS, got):
        assert len(lls) == len(req.context)
        for (context, cont), ll in zip(req.pairs(), lls):
            assert ll == pytest.approx(naive_loglikelihood(engine, context, cont), abs=1e-4)
    for a, b in zip(got, engine.loglikelihoods(CONTEXT_REQUESTS + ENDING_REQUESTS, naive=True)):
        assert a == pytest.approx(b, abs=1e-4)
    assert engine.token_counts(CONTEXT_REQUESTS[:1]) == [[len(engine.encode_request(
        LLRequest(c, [k])).conts[0]) for c, k in CONTEXT_REQUESTS[0].pairs()]]


@pytest.mark.parametrize("share,packing", [(True, True), (True, False), (False, True)])
def test_several_contexts_in_awkward_shapes_score_as_each_alone(tiny_lm, share, packing):
    """One context a prefix of the other, contexts differing in their last token, sharing one token or none,
    trailing spaces moved to the continuation: every choice is its own context + continuation, textbook-scored."""
    engine = make(tiny_lm, share_context=share, packing=packing)
    requests = [LLRequest(["The cat sat", "The cat sat on"], [" the mat."]),
                LLRequest(["The cat sat on the", "The cat sat on a"], [" mat."]),
                LLRequest(["A", "A B"], [" C D E"]),
                LLRequest(["xxx", "yyy"], ["z"]),
                LLRequest(["Shots here.\n\nThe man", "Shots here.\n\nThe woman"], [" left early. "]),
                LLRequest(["Hello there ", "Hello there  "], ["friend"])]
    got, counts = engine.loglikelihoods(requests), engine.token_counts(requests)
    for request, lls, tokens in zip(requests, got, counts):
        for (context, continuation), ll, n in zip(request.pairs(), lls, tokens):
            assert ll == pytest.approx(naive_loglikelihood(engine, context, continuation), abs=1e-4)
            assert n == len(engine.encode_request(LLRequest(context, [continuation])).conts[0])


def test_packing_fills_rows_and_changes_no_score(tiny_lm):
    """Short units share a row (as wide as the longest unit); scores equal the unpacked and naive paths."""
    requests = [LLRequest("The heart pumps blood through the body, and the lungs take in air. " * 3, [" yes", " no"]),
                *ENDING_REQUESTS, *MMLU_REQUESTS[:1]]
    packed = make(tiny_lm, token_budget=400)
    units = {i: len(packed.encode_request(r)[0]) + sum(len(c) - 1 for c in packed.encode_request(r)[1])
             for i, r in enumerate(requests)}
    rows = packed.batcher.first_batch(sorted(units, key=lambda i: -units[i]), units, pack=True)
    assert any(len(row) > 1 for row in rows), f"nothing packed: {rows} {units}"
    got = packed.loglikelihoods(requests)
    unpacked = make(tiny_lm, token_budget=400, packing=False).loglikelihoods(requests)
    naive = packed.loglikelihoods(requests, naive=True)
    for a, b, c in zip(got, unpacked, naive):
        assert a == pytest.approx(b, abs=1e-4) and a == pytest.approx(c, abs=1e-4)


def test_eager_attention_gets_an_additive_mask(tiny_lm):
    engine = make(tiny_lm)
    engine.model.set_attn_implementation("eager")
    engine.attn_impl = "eager"
    got = engine.loglikelihoods(ENDING_REQUESTS)
    ref = make(tiny_lm).loglikelihoods(ENDING_REQUESTS, naive=True)
    for a, b in zip(got, ref):
        assert a == pytest.approx(b, abs=1e-4)


def test_fewshot_prefix_cache_matches_plain_path(tiny_lm):
    shots = [("What is 2 + 3?", ["4", "5", "6", "7"], 1), ("Which animal barks?", ["Cat", "Cow", "Bird", "Dog"], 3)]
    prefix = mmlu_fewshot_prefix("anatomy", shots)
    reqs = [LLRequest(mmlu_prompt("anatomy", q, ["Heart", "Liver", "Lungs", "Skin"], shots), [" A", " B", " C", " D"],
                      prefix) for q in ["Which organ pumps blood?", "Which organ makes bile?", "What covers us?"]]
    cached = make(tiny_lm, batch_size=2, token_budget=100_000)
    with_cache = cached.loglikelihoods(reqs)
    assert cached.prefix_caches, "the prefix path was not taken"
    without = make(tiny_lm, prefix_cache=False).loglikelihoods(reqs)
    for a, b, req in zip(with_cache, without, reqs):
        assert a == pytest.approx(b, abs=1e-4)
        assert a[0] == pytest.approx(naive_loglikelihood(cached, req.context, " A"), abs=1e-4)


def test_batch_size_does_not_change_scores(tiny_lm):
    requests = MMLU_REQUESTS + ENDING_REQUESTS
    one = make(tiny_lm, batch_size=1).loglikelihoods(requests)
    eight = make(tiny_lm, batch_size=8, token_budget=100_000).loglikelihoods(requests)
    for a, b in zip(one, eight):
        assert a == pytest.approx(b, abs=1e-4)
        assert max(range(len(a)), key=a.__getitem__) == max(range(len(b)), key=b.__getitem__)


def test_joint_tokenization_moves_trailing_space(tiny_lm):
    engine = make(tiny_lm)
    a = engine.encode_request(LLRequest("Answer: ", ["A"]))
    b = engine.encode_request(LLRequest("Answer:", [" A"]))
    assert a == b


def test_long_prompt_is_left_truncated_and_counted(tiny_lm):
    engine = Engine(ModelConfig(path=str(tiny_lm), max_length=16), EngineConfig(), ROOT)
    long = LLRequest("The heart pumps blood. " * 20, [" A", " B"])
    lls = engine.loglikelihoods([long])[0]
    assert engine.counts["truncated_prompts"] == 1  # one prompt (with two continuations)
    assert all(math.isfinite(x) for x in lls)


def test_greedy_generation_is_batch_independent(tiny_lm):
    reqs = [GenRequest(r.context) for r in MMLU_REQUESTS]
    one = make(tiny_lm, batch_size=1).generate(reqs, 4)
    many = make(tiny_lm, token_budget=100_000).generate(reqs, 4)
    assert one == many and all(isinstance(x, str) for x in one)


def test_scores_kept_from_a_lookahead_equal_the_naive_path(tiny_lm):
    """Engine.prescore (cross-case batching) scores requests of several cases in one pass; each is answered
    once from what was kept, with its truncation counted when used; what it did not see is scored when asked."""
    engine = Engine(ModelConfig(path=str(tiny_lm), max_length=160), EngineConfig(), ROOT)
    long = LLRequest("The heart pumps blood. " * 20, [" A", " B"])  # over 160 tokens, the others under 100
    seen, unseen = ENDING_REQUESTS + [long], MMLU_REQUESTS
    engine.prescore(seen)
    assert engine.counts["truncated_prompts"] == 0 and len(engine.ahead) == len(seen)
    got = engine.loglikelihoods(unseen + seen)
    assert engine.ahead_used == len(seen) and not engine.ahead
    assert engine.counts["truncated_prompts"] == 1  # the long prompt, counted where its scores are used
    ref = make(tiny_lm).loglikelihoods(unseen + ENDING_REQUESTS, naive=True)
    for lls, ref_lls in zip(got, ref):
        assert lls == pytest.approx(ref_lls, abs=1e-4)
    assert got[-1] == pytest.approx(engine.loglikelihoods([long], naive=True)[0], abs=1e-4)
    assert engine.ahead_used == len(seen)  # asked again: scored anew (each kept result is used once)


@pytest.fixture(scope="module")
def sliding_lm(tiny_lm, tmp_path_factory) -> Path:
    """A 2-layer Mistral whose attention window (12 tokens) is shorter than most test prompts; larger weights than
    the default init, so that what a token sees changes its scores visibly."""
    from transformers import AutoTokenizer, MistralConfig, MistralForCausalLM

    tok = AutoTokenizer.from_pretrained(tiny_lm)
    torch.manual_seed(0)
    config = MistralConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                           sliding_window=12, initializer_range=0.3, tie_word_embeddings=True,
                           bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    out = tmp_path_factory.mktemp("sliding_lm")
    MistralForCausalLM(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.mark.parametrize("packing", [True, False])
def test_a_sliding_window_is_kept_by_every_path(sliding_lm, monkeypatch, packing):
    """The fast paths give the model masks of their own, which transformers does not narrow to a sliding window:
    a request that reaches the window is scored on the naive path (transformers' own mask), shorter ones stay on
    the fast path (nothing to narrow). Both equal the textbook computation, which keeps the window."""
    engine = make(sliding_lm, packing=packing)
    assert engine._loglikelihoods.window == 12
    short = [LLRequest("The heart", [" A", " B is it"]), LLRequest("Blood", [" C", " D"])]
    requests = MMLU_REQUESTS + ENDING_REQUESTS + short
    lengths = {i: len(c) + max(map(len, cs)) - 1 for i, (c, cs, _) in enumerate(map(engine.encode_request, requests))}
    assert {n < 12 for n in lengths.values()} == {True, False}, "fixture: requests on both sides of the window"
    naive_calls = []
    score_naive = type(engine._loglikelihoods)._score_naive
    monkeypatch.setattr(type(engine._loglikelihoods), "_score_naive",
                        lambda self, enc, idx, *a: naive_calls.append(sorted(idx)) or score_naive(self, enc, idx, *a))
    got = engine.loglikelihoods(requests)
    assert naive_calls == [[i for i, n in lengths.items() if n >= 12]]
    for req, lls in zip(requests, got):
        want = [naive_loglikelihood(engine, req.context, c) for c in req.continuations]
        assert lls == pytest.approx(want, abs=1e-4)
        assert max(range(len(lls)), key=lls.__getitem__) == max(range(len(want)), key=want.__getitem__)


def test_sliding_window_is_read_from_the_configs_that_use_one():
    from transformers import Gemma3TextConfig, LlamaConfig, MistralConfig, Qwen2Config

    from nanoeval.engine.loglik import sliding_window

    assert sliding_window(LlamaConfig()) is None
    assert sliding_window(MistralConfig(sliding_window=64)) == 64
    assert sliding_window(MistralConfig(sliding_window=None)) is None
    assert sliding_window(Qwen2Config(sliding_window=64)) is None  # use_sliding_window is off by default
    assert sliding_window(Qwen2Config(use_sliding_window=True, sliding_window=64, max_window_layers=0)) == 64
    assert sliding_window(Gemma3TextConfig(sliding_window=512)) == 512  # some layers slide, some see all
    assert sliding_window(Gemma3TextConfig(sliding_window=512, layer_types=["full_attention"] * 26)) is None
