"""What decides the tokens a model sees, as lm-evaluation-harness 0.4.13 decides them: one BOS when a chat template
already writes it (local and served engines), the BOS id 0 as an empty context's start token, a continuation
longer than max_length refused, truncated prompts counted once through an out-of-memory retry, and the versions of
the libraries that make tokens in the fingerprint."""
from __future__ import annotations

import json
import os
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

from nanoeval import identity, runner
from nanoeval.config import EngineConfig, ModelConfig
from nanoeval.config_files import load_task
from nanoeval.engine import Engine, GenRequest, LLRequest
from tests.conftest import ROOT, corpus, mmlu_tiny_config
from tests.test_served import openai_server

TEMPLATE = ("{{ bos_token }}{% for m in messages %}<|user|>{{ m['content'] }}\n{% endfor %}"
            "{% if add_generation_prompt %}<|assistant|>{% endif %}")
QUESTION = "Which organ pumps blood through the body?"
ENDINGS = [" the heart.", " the liver, which also filters", " lungs"]


@pytest.fixture(scope="module")
def bos_lm(tmp_path_factory) -> Path:
    """A 2-layer Llama whose tokenizer adds BOS `<s>` (id 0) to every text, as Llama's does, and whose chat
    template writes `{{ bos_token }}` itself, as Llama 3's and Gemma's do."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(corpus(), trainers.BpeTrainer(
        vocab_size=600, special_tokens=["<s>", "<|endoftext|>", "<|pad|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", 0)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="<|endoftext|>",
                                   pad_token="<|pad|>")
    fast.chat_template = TEMPLATE
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         initializer_range=0.2, bos_token_id=0, eos_token_id=fast.eos_token_id,
                         pad_token_id=fast.pad_token_id, tie_word_embeddings=True)
    out = tmp_path_factory.mktemp("bos_lm")
    LlamaForCausalLM(config).save_pretrained(out)
    fast.save_pretrained(out)
    assert fast.bos_token_id == 0 and fast("x")["input_ids"][0] == 0, "fixture: the tokenizer adds BOS id 0"
    return out


def engine_for(path: Path, **model) -> Engine:
    return Engine(ModelConfig(path=str(path), **model), EngineConfig(), ROOT)


def textbook(model, ids: list[int], n_cont: int) -> float:
    """Full logits of one unpadded sequence, log_softmax, the last n_cont tokens' log-probabilities summed."""
    with torch.no_grad():
        logp = model(torch.tensor([ids])).logits.float().log_softmax(-1)[0]
    return sum(logp[len(ids) - n_cont - 1 + k, ids[len(ids) - n_cont + k]].item() for k in range(n_cont))


def templated_ids(tok, text: str, continuation: str = "") -> tuple[list[int], list[int]]:
    """What lm-eval 0.4.13 feeds the model with `apply_chat_template`: the templated text, which starts with the
    BOS text, tokenized without special tokens (`has_bos_prefix`); the continuation is the tail of the joint
    tokenization."""
    prompt = tok.apply_chat_template([{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)
    assert prompt.startswith(tok.bos_token)
    ctx = tok(prompt, add_special_tokens=False)["input_ids"]
    whole = tok(prompt + continuation, add_special_tokens=False)["input_ids"]
    return ctx, whole[len(ctx):]


# ------------------------------------------------------------------------------------------- double BOS
@pytest.mark.parametrize("add_bos_token", [None, True])
def test_a_chat_template_that_writes_bos_gets_no_second_bos_in_loglikelihoods(bos_lm, add_bos_token):
    engine = engine_for(bos_lm, chat_template=True, add_bos_token=add_bos_token)
    ctx = engine.encode_request(LLRequest(QUESTION, ENDINGS)).ctx
    assert ctx == templated_ids(engine.tokenizer, QUESTION)[0] and ctx[:2] != [0, 0] and ctx.count(0) == 1
    fast = engine.loglikelihoods([LLRequest(QUESTION, ENDINGS)])[0]
    naive = engine.loglikelihoods([LLRequest(QUESTION, ENDINGS)], naive=True)[0]
    for ending, got, got_naive in zip(ENDINGS, fast, naive):
        c, k = templated_ids(engine.tokenizer, QUESTION, ending)
        assert got == pytest.approx(textbook(engine.model, c + k, len(k)), abs=1e-4)
        assert got_naive == pytest.approx(got, abs=1e-4)


def test_without_a_chat_template_the_tokenizer_still_adds_its_one_bos(bos_lm):
    engine = engine_for(bos_lm)
    ctx = engine.encode_request(LLRequest(QUESTION, ENDINGS)).ctx
    assert ctx == engine.tokenizer(QUESTION)["input_ids"] and ctx[0] == 0 and ctx.count(0) == 1


def test_generation_with_a_chat_template_that_writes_bos_sees_one_bos(bos_lm):
    engine = engine_for(bos_lm, chat_template=True)
    seen = []

    def spy(_, args, kw):  # the prefill: the prompts' tokens (the rows' unpadded parts)
        if kw["cache"].get_seq_length() == 0:
            mask = kw["attention_mask"] if kw["attention_mask"] is not None else torch.ones_like(kw["input_ids"])
            seen.extend(row[m.bool()].tolist() for row, m in zip(kw["input_ids"], mask))

    hook = engine.model.register_forward_pre_hook(spy, with_kwargs=True)
    questions = [QUESTION, "Where does gas exchange happen?"]
    engine.generate([GenRequest(q) for q in questions], 3)
    hook.remove()
    assert sorted(seen) == sorted(templated_ids(engine.tokenizer, q)[0] for q in questions)
    assert all(ids[0] == 0 and ids[1] != 0 for ids in seen)


def test_a_served_model_scores_the_same_single_bos_tokens(bos_lm):
    """The served engine tokenizes with the same code (base.py): the server is asked about one BOS, and its
    independent forward pass gives the textbook numbers; a continuation longer than max_length is refused as the
    local engine refuses it (never scored in part)."""
    from nanoeval.engine.served import ServedEngine

    def served(**model):
        return ServedEngine(ModelConfig(path=str(bos_lm), backend="openai", name="tiny-served", base_url=url,
                                        chat_template=True, concurrency=1, **model), EngineConfig(), ROOT)

    local = engine_for(bos_lm, chat_template=True)
    with openai_server(bos_lm) as (url, _):
        engine = served()
        got = engine.loglikelihoods([LLRequest(QUESTION, ENDINGS)])[0]
        engine.close()
        for ending, ll in zip(ENDINGS, got):
            c, k = templated_ids(local.tokenizer, QUESTION, ending)
            assert ll == pytest.approx(textbook(local.model, c + k, len(k)), abs=1e-4)
        short = served(max_length=8)
        with pytest.raises(ValueError, match=r"^a continuation of \d+ tokens .* is longer than the model's max_length "
                                             r"\(8\): it cannot be scored$"):
            short.loglikelihoods([LLRequest(QUESTION, [" the heart pumps blood through the body"])])
        short.close()


# ------------------------------------------------------------------------------------------- empty context
def test_an_empty_context_starts_with_a_bos_whose_id_is_0(bos_lm):
    engine = engine_for(bos_lm)
    tok = engine.tokenizer
    assert tok.bos_token_id == 0 and tok.eos_token_id != 0
    ctx, conts, _ = engine.encode_request(LLRequest("", ENDINGS))
    # lm-eval: [prefix_token_id] (BOS if it is not None), the continuation tokenized without special tokens
    assert ctx == [0] and conts == [tok(e, add_special_tokens=False)["input_ids"] for e in ENDINGS]
    # a continuation that starts with the BOS token has it as its context: the same tokens, scored once
    heart = tok(" the heart", add_special_tokens=False)["input_ids"]
    assert engine.encode_request(LLRequest("", ["<s> the heart"])) == ([0], [heart], [len(heart)])
    for ending, ll in zip(ENDINGS, engine.loglikelihoods([LLRequest("", ENDINGS)])[0]):
        k = tok(ending, add_special_tokens=False)["input_ids"]
        assert ll == pytest.approx(textbook(engine.model, [0] + k, len(k)), abs=1e-4)


# ------------------------------------------------------------------------------------------- max_length
@pytest.mark.parametrize("engine_settings", [{}, {"share_context": False}], ids=["shared", "unshared"])
def test_a_continuation_longer_than_max_length_is_refused_and_one_that_fits_is_scored(tiny_lm, engine_settings):
    engine = Engine(ModelConfig(path=str(tiny_lm), max_length=8), EngineConfig(**engine_settings), ROOT)
    tok = engine.tokenizer
    context = "The heart pumps blood through the body, and"
    longest = " the lungs take in air while the liver filters the blood and the skin"
    def tokens(cont: str) -> int:  # the continuation's tokens: the tail of the joint tokenization
        return len(tok(context + cont)["input_ids"]) - len(tok(context)["input_ids"])

    fits = next(longest[:n] for n in range(len(longest), 0, -1) if tokens(longest[:n]) == 8)
    ctx, (cont,), _ = engine.encode_request(LLRequest(context, [fits]))
    assert len(cont) == 8 and len(ctx) > 1
    # lm-eval: the last max_length + 1 tokens of context + continuation, the last one never input
    want = textbook(engine.model, (ctx + cont)[-9:], 8)
    for naive in (False, True):
        assert engine.loglikelihoods([LLRequest(context, [fits, " the"])], naive=naive)[0][0] == \
            pytest.approx(want, abs=1e-4)
    too_long = fits + " and the"
    assert tokens(too_long) > 8
    for naive in (False, True):
        with pytest.raises(ValueError, match=r"^a continuation of \d+ tokens \(' the lungs.*\) is longer than the "
                                             r"model's max_length \(8\): it cannot be scored$"):
            engine.loglikelihoods([LLRequest(context, [" the", too_long])], naive=naive)


# ------------------------------------------------------------------------------------------- out of memory
def test_an_out_of_memory_retry_counts_truncated_prompts_once(tiny_lm):
    """A CUDA out-of-memory error (injected on the first batch: no GPU here) retries the batch at half the budget;
    the counters and the generations are those of a run without it."""
    requests = [GenRequest("The heart pumps blood. " * 6), GenRequest("Rivers carry water to the sea. " * 6),
                GenRequest("Which organ?")]
    plain = Engine(ModelConfig(path=str(tiny_lm), max_length=24), EngineConfig(token_budget=100_000), ROOT)
    want = plain.generate(requests, 4)
    assert plain.counts["truncated_prompts"] == 2, "fixture: two prompts over 20 tokens"
    engine = Engine(ModelConfig(path=str(tiny_lm), max_length=24), EngineConfig(token_budget=100_000), ROOT)
    calls = []

    def first_prefill_out_of_memory(_, args, kw):  # a batch's prefill: its rows
        if kw["cache"].get_seq_length() == 0:
            calls.append(len(kw["input_ids"]))
            if len(calls) == 1:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")

    engine.model.register_forward_pre_hook(first_prefill_out_of_memory, with_kwargs=True)
    assert engine.generate(requests, 4) == want
    assert calls[0] == 3 and sum(calls[1:]) == 3 and engine.batcher.budget == 50_000  # the retry ran
    assert engine.counts == plain.counts


# ------------------------------------------------------------------------------------------- fingerprint
@pytest.mark.parametrize("package", ["tokenizers", "datasets", "jinja2", "gguf", "Pillow"])
def test_a_library_that_makes_tokens_or_data_is_part_of_the_fingerprint(tiny_lm, tmp_path, monkeypatch, package):
    assert metadata.version(package), f"{package} is installed here"
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(mmlu_tiny_config(tiny_lm, tmp_path / "r")))
    cfg = load_task(tmp_path / "c.yaml")
    real = runner.task_info(cfg, ROOT)
    assert real["environment"][package] == metadata.version(package)

    def version(pkg):
        return "0.0.1.post1" if pkg == package else metadata.version(pkg)

    monkeypatch.setattr(identity, "metadata", SimpleNamespace(version=version,
                                                              PackageNotFoundError=metadata.PackageNotFoundError))
    changed = runner.task_info(cfg, ROOT)
    monkeypatch.undo()
    assert changed["fingerprint"] != real["fingerprint"]
    assert {k for k, v in real["fingerprint_parts"].items() if changed["fingerprint_parts"][k] != v} == {"environment"}


def test_a_tokenizers_upgrade_moves_the_old_run_aside(run_evals, tiny_lm, tmp_path):
    """The first run sees another tokenizers version (a dist-info ahead of the real one on the path: the library
    itself is the same); the rerun with the real one moves that run to previous/ and says why."""
    real = metadata.version("tokenizers")
    old = f"{real}.post1"  # inside transformers' required range, so transformers imports as usual
    fake = tmp_path / "fake_site" / f"tokenizers-{old}.dist-info"
    fake.mkdir(parents=True)
    (fake / "METADATA").write_text(f"Metadata-Version: 2.1\nName: tokenizers\nVersion: {old}\n")
    out = tmp_path / "r"
    first = run_evals(mmlu_tiny_config(tiny_lm, out), env={"PYTHONPATH": f"{fake.parent}{os.pathsep}{ROOT}"})
    assert first.ret == 0, first.stdout.str()
    assert json.loads((out / "run.json").read_text())["environment"]["tokenizers"] == old
    second = run_evals(mmlu_tiny_config(tiny_lm, out))
    assert second.ret == 0, second.stdout.str()
    second.stdout.fnmatch_lines(["nanoeval: mmlu: fingerprint changed (environment (*): * -> *); previous run "
                                 "moved to *"])
    assert json.loads((out / "run.json").read_text())["environment"]["tokenizers"] == real
    moved = list((out / "previous").glob("*/run.json"))
    assert len(moved) == 1 and json.loads(moved[0].read_text())["environment"]["tokenizers"] == old
