"""A model behind an OpenAI-compatible server (vLLM, SGLang, TGI, `transformers serve`, hosted APIs): `backend: openai`.

Generation is greedy (`temperature: 0`, `max_tokens` = the recipe's max_new_tokens, `stop` = the request's stop
strings, which are also cut here: the response ends before the earliest one, whatever the server did with them):
  * chat off (MMLU gen_letter's default): the recipe's raw prompt to /v1/completions, so the prompt is unchanged;
  * chat on (and MMMU-Pro): /v1/chat/completions, one user turn: the text, then the images as base64 PNG data
    URLs in the request's order (the order the official MMMU-Pro code attaches them).
Log-likelihoods (rank_ll), as lm-eval's `local-completions`: /v1/completions with the prompt as token ids of the
local tokenizer (model.path; tokenized as the local engine does, base.py), `echo: true`, `logprobs: 1`,
`max_tokens: 1`; a continuation's score is the sum of the echoed log-probabilities of its tokens. A server that
returns no prompt log-probabilities (transformers serve ignores `echo`/`logprobs`) fails the case, never a guess.
Requests go through the official `openai` client (one connection pool per process and replica; model.base_url may
list replicas, taken in turn). Retries are ours: 429, 5xx, timeouts and lost connections back off exponentially
(0.5 s, 1 s, 2 s, ... at most 30 s, or the server's Retry-After) up to model.max_retries; any other 4xx fails at
once. A request that still fails raises ServerError with the server's message. The runner keeps `concurrency`
requests in flight (one example per call, on threads; runner.py) and journals each answer as it arrives.
Answers are read as JSON and checked here, not through the client's types (which accept anything and fail later
with an AttributeError, or turn a missing `text` into ""): a 200 answer that is not the API's format (a proxy's
HTML page, a JSON list, `choices` that is not a list of objects, a missing `text` or `message`, choice indices
that are not one per prompt, a positive log-probability) is a one-line task error naming the URL: every request
would get one, so the task stops once.
"""
from __future__ import annotations

import base64
import io
import itertools
import json
import math
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlsplit

from nanoeval.benchmark import TaskError
from nanoeval.config import EngineConfig, ModelConfig
from nanoeval.engine.base import EngineBase
from nanoeval.engine.requests import Encoded, GenRequest, LLRequest

DEFAULTS = {"concurrency": 8, "timeout": 600.0, "max_retries": 5}
BACKOFF_SECONDS, MAX_BACKOFF_SECONDS = 0.5, 30.0
NO_PROMPT_LOGPROBS = ("the server cannot score log-likelihoods: its /v1/completions response has no prompt "
                      "log-probabilities (echo + logprobs); rank_ll needs a server that returns them (vLLM), or "
                      "use scoring.strategy: gen_letter")


# `created` within this many seconds of the answer's own Date is the time of the request (vLLM, SGLang: the
# ModelCard's default), not when the model was made: it says nothing of the weights and changes every second
CREATED_IS_NOW_SECONDS = 120
# a log-probability is at most 0; a server computing it as logit - logsumexp may round a certain token to a hair above
LOGPROB_ROUNDING = 1e-6


class ServerError(RuntimeError):
    """A request the server would not answer (after the retries it deserves): one line, with the server's words."""


class BadAnswer(ValueError):
    """What is wrong with a 200 answer that is not the API's format (the caller adds the URL)."""


def setting(cfg: ModelConfig, key: str):
    value = getattr(cfg, key)
    return DEFAULTS[key] if value is None else value


def base_urls(cfg: ModelConfig) -> list[str]:
    """model.base_url as a list; a URL without a path gets the usual /v1 (http://localhost:8000 works too)."""
    urls = [cfg.base_url] if isinstance(cfg.base_url, str) else list(cfg.base_url or [])
    return [u.rstrip("/") + ("/v1" if urlsplit(u).path in ("", "/") else "") for u in urls]


def endpoint_hosts(cfg: ModelConfig) -> list[str]:
    """What summary.json records of where the model was served: scheme and host:port, never a path or key."""
    return [f"{urlsplit(u).scheme}://{urlsplit(u).hostname}" + (f":{urlsplit(u).port}" if urlsplit(u).port else "")
            for u in base_urls(cfg)]


def make_client(cfg: ModelConfig, url: str):
    import openai

    key = os.environ.get(cfg.api_key_env) if cfg.api_key_env else None
    # retries are ours (which statuses, and the message when they run out); a local server needs no key
    return openai.OpenAI(base_url=url, api_key=key or "not-needed", timeout=setting(cfg, "timeout"), max_retries=0)


def served_identity(cfg: ModelConfig) -> dict:
    """What the fingerprint knows of a served model, from its entry at /v1/models (the first replica's; every
    replica must list model.name): the name; `root`, the weights' path or hub id (vLLM), and `parent`, a LoRA
    adapter's base model, where reported; `created` where it is a fixed time (not the time of the request, as vLLM
    and SGLang report it). Raises ServerError naming the URL."""
    import openai

    entry = None
    for url in base_urls(cfg):
        client = make_client(cfg, url)
        try:
            raw = client.with_options(max_retries=2, timeout=min(30.0, setting(cfg, "timeout"))
                                      ).models.with_raw_response.list()
            listed = _models(_json_object(raw))
        except openai.APIError as e:
            raise ServerError(f"model.base_url: {url}/models: {_message(e)}") from None
        except BadAnswer as e:
            raise ServerError(f"model.base_url: {url}/models: {e}") from None
        finally:
            client.close()
        if cfg.name not in listed:
            raise ServerError(f"model.name: {cfg.name!r} is not served at {url} (its /v1/models lists: "
                              f"{', '.join(sorted(listed)) or 'nothing'})")
        entry = entry or {**listed[cfg.name], "date": raw.headers.get("date")}
    root, parent = (entry.get(k) if isinstance(entry.get(k), str) and entry.get(k) != cfg.name else None
                    for k in ("root", "parent"))
    return {"kind": "served", "backend": "openai", "served_model": cfg.name, "root": root, "parent": parent,
            "created": _fixed_created(entry.get("created"), entry["date"])}


def _models(body: dict) -> dict[str, dict]:
    """/v1/models' entries by id."""
    data = body.get("data", ...)
    if not isinstance(data, list) or not all(isinstance(m, dict) and isinstance(m.get("id"), str) for m in data):
        raise BadAnswer(f"`data` is {_kind(data)}, expected a list of models, each with an `id`")
    return {m["id"]: m for m in data}


def _fixed_created(created, date: str | None) -> int | None:
    """`created` if it says when the model was made: a positive time (seconds, or milliseconds) that is not within
    CREATED_IS_NOW_SECONDS of the answer's Date header (the server's clock; ours without one)."""
    if type(created) not in (int, float) or not math.isfinite(created) or created <= 0:
        return None  # 0: not known (transformers serve for a local folder)
    try:
        now = parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError):
        now = time.time()
    seconds = created / 1000 if created > 1e11 else created  # 1e11 s is the year 5138
    return None if abs(seconds - now) <= CREATED_IS_NOW_SECONDS else int(created)


def _kind(value) -> str:
    """A JSON value in a few words, for an error line."""
    if value is ...:
        return "missing"
    if value is None:
        return "null"
    if isinstance(value, str):
        return f"a string ({value[:40]!r})"
    return {bool: "a boolean", int: "a number", float: "a number", list: "a list", dict: "an object"}.get(
        type(value), type(value).__name__)


def _json_object(raw) -> dict:
    """The JSON object of a 200 answer (the client's raw response)."""
    try:
        body = json.loads(raw.content)
    except ValueError:
        text = " ".join(raw.text.split())
        raise BadAnswer(f"the answer is not JSON (Content-Type {raw.headers.get('content-type') or 'none'}: "
                        f"{text[:80]!r})") from None
    if not isinstance(body, dict):
        raise BadAnswer(f"the answer is {_kind(body)}, expected a JSON object")
    return body


def _choices(body: dict, n: int) -> list[dict]:
    """The answer's `choices`: one object per prompt, in the prompts' order (`index` 0..n-1, each once; a single
    choice may leave it out)."""
    choices = body.get("choices", ...)
    if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
        raise BadAnswer(f"`choices` is {_kind(choices)}, expected a list of objects")
    if not choices:
        raise BadAnswer("the answer has no choices")
    if n == 1 and len(choices) == 1 and "index" not in choices[0]:
        return choices
    index = [c.get("index") for c in choices]
    if not all(type(i) is int for i in index) or sorted(index) != list(range(n)):
        raise BadAnswer(f"choice indices {index[:8]}{' ...' if len(index) > 8 else ''}: expected one choice per "
                        f"prompt, indices 0..{n - 1} each once")
    return sorted(choices, key=lambda c: c["index"])


def _completion_text(body: dict) -> tuple[str, str | None]:
    """A completion's text and finish_reason (a missing or null `text` is a broken answer, never an empty one)."""
    choice = _choices(body, 1)[0]
    if not isinstance(choice.get("text"), str):
        raise BadAnswer(f"`choices[0].text` is {_kind(choice.get('text', ...))}, expected a string")
    return choice["text"], choice.get("finish_reason")


def _chat_text(body: dict) -> tuple[str, str | None]:
    """A chat answer's message content and finish_reason; null content (the model wrote nothing outside a
    reasoning field; transformers serve then leaves the key out) is ''."""
    choice = _choices(body, 1)[0]
    message = choice.get("message", ...)
    if not isinstance(message, dict):
        raise BadAnswer(f"`choices[0].message` is {_kind(message)}, expected an object")
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        raise BadAnswer(f"`choices[0].message.content` is {_kind(content)}, expected a string or null")
    return content or "", choice.get("finish_reason")


def _echoes_logprobs(body: dict) -> bool:
    """Does the answer echo any prompt log-probability?"""
    lp = _choices(body, 1)[0].get("logprobs")
    tokens = lp.get("token_logprobs") if isinstance(lp, dict) else None
    return isinstance(tokens, list) and any(x is not None for x in tokens)


def _scored_logprobs(choice: dict, i: int, prompt_len: int, n: int) -> list[float]:
    """The echoed log-probabilities of a prompt's last `n` tokens."""
    lp = choice.get("logprobs")
    tokens = lp.get("token_logprobs") if isinstance(lp, dict) else None
    if not isinstance(tokens, list) or len(tokens) < prompt_len or any(
            x is None for x in tokens[prompt_len - n: prompt_len]):
        raise BadAnswer(NO_PROMPT_LOGPROBS)
    for j in range(prompt_len - n, prompt_len):
        x = tokens[j]
        if isinstance(x, bool) or not isinstance(x, (int, float)) or math.isnan(x) or x > LOGPROB_ROUNDING:
            raise BadAnswer(f"`choices[{i}].logprobs.token_logprobs[{j}]` is {x!r}: a log-probability is a number "
                            "<= 0")
    return tokens[prompt_len - n: prompt_len]


def _message(e: Exception) -> str:
    """The server's own words for a failed request, in one line."""
    import openai

    if isinstance(e, openai.APITimeoutError):
        return f"no answer within the timeout (model.timeout) ({e})"
    if isinstance(e, openai.APIConnectionError):
        return f"cannot connect ({e.__cause__ or e})"
    if isinstance(e, openai.APIStatusError):
        body = e.body
        if isinstance(body, dict):
            err = body.get("error", body)
            text = err.get("message") or err.get("detail") if isinstance(err, dict) else err
        else:
            text = body or e.response.text
        return f"HTTP {e.status_code}: {' '.join(str(text or e.message).split())[:500]}"
    return f"{e.__class__.__name__}: {e}"


def data_url(image) -> str:
    """An image as a base64 PNG data URL (lossless: the server decodes the pixels the local engine would see)."""
    buf = io.BytesIO()
    (image if image.mode in ("1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16") else image.convert("RGB")).save(
        buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


class ServedEngine(EngineBase):
    """The engine interface (loglikelihoods, prescore, generate, counts, meta) over HTTP. Thread-safe: the runner
    scores a case's examples on `concurrency` threads; `counts` is per thread (each thread's chunk counts itself)."""

    device = "server"

    def __init__(self, cfg: ModelConfig, engine: EngineConfig, root: Path):
        from nanoeval.engine.loading import model_location

        t0 = time.time()
        self.cfg, self.settings = cfg, engine
        self.concurrency, self.max_retries = setting(cfg, "concurrency"), setting(cfg, "max_retries")
        self.clients = [make_client(cfg, u) for u in base_urls(cfg)]
        self._turn, self._turn_lock = itertools.cycle(range(len(self.clients))), threading.Lock()
        self.tokenizer, self.processor = None, None
        if cfg.path is not None:  # rank_ll's token ids (and the chat template of a rank_ll context)
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(model_location(cfg, root), gguf_file=cfg.gguf_file,
                                                           revision=cfg.revision)
        self.max_length = cfg.max_length
        self.lookahead = engine.lookahead or 0  # off by default: the runner's threads keep a server busy already
        self._init_ahead()
        self._local = threading.local()
        self._probe_lock, self._probed = threading.Lock(), None  # None: not asked yet
        self.load_seconds = round(time.time() - t0, 2)
        self.commit = None
        self.meta = {"id": cfg.name, "backend": "openai", "endpoint": endpoint_hosts(cfg), "served_model": cfg.name,
                     "package": None, "gguf_file": None, "revision": None, "commit": None, "dtype": None,
                     "device": "server", "kind": None, "architecture": None, "parameters": None,
                     "max_length": cfg.max_length, "tokenizer": cfg.path, "load_seconds": self.load_seconds,
                     "generation": {"temperature": 0, "max_tokens": "the recipe's max_new_tokens",
                                    "endpoint": "/v1/chat/completions" if cfg.chat_template else "/v1/completions",
                                    "images": "base64 PNG data URLs after the text (chat)"},
                     "loglikelihood": {"endpoint": "/v1/completions", "prompt": "token ids (model.path's tokenizer)",
                                       "echo": True, "logprobs": 1, "max_tokens": 1}}

    # per-thread counters (the runner resets and reads them around each call, on the calling thread)
    @property
    def counts(self) -> dict:
        if not hasattr(self._local, "counts"):
            self._local.counts = {"truncated_prompts": 0, "hit_max_new_tokens": 0}
        return self._local.counts

    @counts.setter
    def counts(self, value: dict) -> None:
        self._local.counts = value

    @property
    def noted(self) -> list | None:
        return getattr(self._local, "noted", None)

    @noted.setter
    def noted(self, value: list | None) -> None:
        self._local.noted = value

    def close(self) -> None:
        for c in self.clients:
            c.close()

    # ------------------------------------------------------------------------------------------------ requests
    def _call(self, send, what: str, read):
        """send(client) (a raw response) with the retries a request deserves, ServerError with the server's message
        otherwise; then read(the answer's JSON object). An answer that is not the API's format (BadAnswer) is a
        TaskError naming the URL: not retried, the task's other cases skipped."""
        import openai

        for attempt in itertools.count():
            with self._turn_lock:
                client = self.clients[next(self._turn)]
            try:
                raw = send(client)
            except openai.APIStatusError as e:
                if (e.status_code != 429 and e.status_code < 500) or attempt >= self.max_retries:
                    raise ServerError(self._failed(client, what, e, attempt)) from None
                wait = _retry_after(e)
            except openai.APIConnectionError as e:  # also timeouts
                if attempt >= self.max_retries:
                    raise ServerError(self._failed(client, what, e, attempt)) from None
                wait = None
            except openai.APIError as e:
                raise ServerError(self._failed(client, what, e, attempt)) from None
            else:
                try:
                    return read(_json_object(raw))
                except BadAnswer as e:
                    raise TaskError(f"{_url(client, what)}: {e}") from None
            time.sleep(min(MAX_BACKOFF_SECONDS, wait if wait is not None else BACKOFF_SECONDS * 2 ** attempt))

    def _failed(self, client, what: str, e: Exception, attempt: int) -> str:
        tries = f" (after {attempt} retries)" if attempt else ""
        return f"{_url(client, what)}: {_message(e)}{tries}"

    def _map(self, fn, items: list) -> list:
        if len(items) <= 1 or self.concurrency == 1:
            return [fn(x) for x in items]
        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(fn, items))

    # ------------------------------------------------------------------------------------------------ generation
    def shown_prompt(self, req: LLRequest | GenRequest) -> str:
        """A generation's user turn as sent: the server applies its own chat template to it."""
        return req.text if isinstance(req, GenRequest) else super().shown_prompt(req)

    def generate(self, requests: list[GenRequest], max_new_tokens: int) -> list[str]:
        """Each request's response, cut before its earliest stop string; a response the server ended for length
        (`finish_reason: length`) with no stop string in it counts as hit_max_new_tokens."""
        answers = self._map(lambda r: self._generate_one(r, max_new_tokens), requests)
        self.count([{"hit_max_new_tokens": int(cut)} for _, cut in answers])  # on this thread
        return [text for text, _ in answers]

    def _generate_one(self, req: GenRequest, max_new_tokens: int) -> tuple[str, bool]:
        """(response, cut at max_tokens). The stop strings go to the server as `stop` and are also cut here:
        servers differ in whether and how they honour it (and some leave the stop string in)."""
        chat = self.cfg.chat_template if req.chat is None else req.chat
        common = {"model": self.cfg.name, "temperature": 0, "max_tokens": max_new_tokens}
        if req.until:  # OpenAI's API takes at most 4 (vLLM any number); every one of them is cut here anyway
            common["stop"] = list(req.until)[:4]
        if not chat:
            if req.images:
                raise ValueError("images need the chat endpoint (model.chat_template: true)")
            text, finish = self._call(lambda c: c.completions.with_raw_response.create(prompt=req.text, **common),
                                      "completions", _completion_text)
        else:  # a text-only turn is a plain string, as the local engine gives a text-only model's template
            content = [{"type": "text", "text": req.text}] + [
                {"type": "image_url", "image_url": {"url": data_url(im)}} for im in req.images]
            messages = [{"role": "user", "content": content if req.images else req.text}]
            text, finish = self._call(lambda c: c.chat.completions.with_raw_response.create(
                messages=messages, **common), "chat/completions", _chat_text)
        text, met = req.cut(text)  # a stop string the server left in (or did not honour): met, not cut
        return text, finish == "length" and not met

    # ------------------------------------------------------------------------------------------------ log-likelihoods
    def _loglikelihoods(self, requests: list[LLRequest], naive: bool = False, done=None):
        """With `done` (a look-ahead), requests go in rounds of `concurrency`, each round's answers handed over
        before the next starts (loglik._Scores's contract), so they are journaled as they come."""
        if not requests:
            return [], []
        self._check_prompt_logprobs()
        encoded, out = self.encode_requests(requests), []
        step = len(encoded) if done is None else self.concurrency
        for start in range(0, len(encoded), step):
            answers = self._map(self._loglikelihood_one, encoded[start: start + step])
            if done is not None:
                done([(start + k, lls, cut) for k, (lls, cut) in enumerate(answers)])
            out += answers
        return [lls for lls, _ in out], [cut for _, cut in out]

    def _loglikelihood_one(self, encoded: Encoded) -> tuple[list[float], bool]:
        """One request: each choice's tokens (context, then continuation) as one prompt of a call (one choice each),
        its last `scored` tokens summed."""
        ctx, conts, scored = encoded
        # as the local engine: at most max_length tokens of input, i.e. max_length + 1 echoed (the last one only
        # scored), left-truncated and counted (the server must accept max_length + 1 prompt tokens and 1 new one)
        keep = self.max_length + 1 if self.max_length else 10 ** 9
        prompts = [(ctx + c)[-keep:] for c in conts]
        cut = any(len(ctx) + len(c) > keep for c in conts)

        def read(body: dict) -> list[float]:  # a continuation follows at least one token of context
            return [float(sum(_scored_logprobs(choice, i, len(prompt), min(n, len(prompt) - 1))))
                    for i, (prompt, n, choice) in enumerate(zip(prompts, scored, _choices(body, len(prompts))))]

        lls = self._call(lambda cl: cl.completions.with_raw_response.create(
            model=self.cfg.name, prompt=prompts, echo=True, logprobs=1, max_tokens=1, temperature=0), "completions",
            read)
        return lls, cut  # counted by `loglikelihoods`, in the chunk whose records use the scores

    def _check_prompt_logprobs(self) -> None:
        """Once: does the server echo prompt log-probabilities at all? Asked with a text prompt, which every
        completions server takes (transformers serve refuses token ids, and ignores echo/logprobs with a warning)."""
        with self._probe_lock:
            if self._probed is True:
                return
            if self._probed is None:  # once known, every case of the task would hit it: reported once
                self._probed = self._call(lambda c: c.completions.with_raw_response.create(
                    model=self.cfg.name, prompt="Hello world", echo=True, logprobs=1, max_tokens=1, temperature=0),
                    "completions", _echoes_logprobs)
            if not self._probed:
                raise TaskError(f"{_url(self.clients[0], 'completions')}: {NO_PROMPT_LOGPROBS}")


def _url(client, what: str) -> str:
    return f"{str(client.base_url).rstrip('/')}/{what}"


def _retry_after(e) -> float | None:
    """The server's Retry-After (seconds), if it sent one."""
    try:
        return max(0.0, float(e.response.headers.get("retry-after")))
    except (TypeError, ValueError):
        return None
