"""A model behind an OpenAI-compatible server (vLLM, SGLang, TGI, `transformers serve`, hosted APIs): `backend: openai`.

Generation is greedy (`temperature: 0`, `max_tokens` = the recipe's max_new_tokens):
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
"""
from __future__ import annotations

import base64
import io
import itertools
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

from nanoeval.config import EngineConfig, ModelConfig
from nanoeval.engine.base import EngineBase
from nanoeval.engine.requests import GenRequest, LLRequest

DEFAULTS = {"concurrency": 8, "timeout": 600.0, "max_retries": 5}
BACKOFF_SECONDS, MAX_BACKOFF_SECONDS = 0.5, 30.0
NO_PROMPT_LOGPROBS = ("the server cannot score log-likelihoods: its /v1/completions response has no prompt "
                      "log-probabilities (echo + logprobs); rank_ll needs a server that returns them (vLLM), or "
                      "use scoring.strategy: gen_letter")


class ServerError(RuntimeError):
    """A request the server would not answer (after the retries it deserves): one line, with the server's words."""


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
    """What the fingerprint knows of a served model: the backend and the name (and `root`, the weights' path or
    hub id, where the server reports it, as vLLM does) the server lists at /v1/models. Every replica must list
    model.name. Raises ServerError naming the URL."""
    import openai

    entry = None
    for url in base_urls(cfg):
        client = make_client(cfg, url)
        try:
            listed = {m.id: m for m in client.with_options(max_retries=2, timeout=min(30.0, setting(
                cfg, "timeout"))).models.list()}
        except openai.APIError as e:
            raise ServerError(f"model.base_url: {url}/models: {_message(e)}") from None
        finally:
            client.close()
        if cfg.name not in listed:
            raise ServerError(f"model.name: {cfg.name!r} is not served at {url} (its /v1/models lists: "
                              f"{', '.join(sorted(listed)) or 'nothing'})")
        entry = entry or listed[cfg.name]
    root = (entry.model_extra or {}).get("root")
    return {"kind": "served", "backend": "openai", "served_model": cfg.name, "root": root if root != cfg.name
            else None}


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
        self.lookahead = engine.lookahead or 0  # off by default: answers scored ahead are not journaled yet
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

    def close(self) -> None:
        for c in self.clients:
            c.close()

    # ------------------------------------------------------------------------------------------------ requests
    def _call(self, send, what: str):
        """send(client) with the retries a request deserves; ServerError with the server's message otherwise."""
        import openai

        for attempt in itertools.count():
            with self._turn_lock:
                client = self.clients[next(self._turn)]
            try:
                resp = send(client)
                if not resp.choices:
                    raise ServerError(f"{_url(client, what)}: the answer has no choices")
                return resp
            except openai.APIStatusError as e:
                if (e.status_code != 429 and e.status_code < 500) or attempt >= self.max_retries:
                    raise ServerError(self._failed(client, what, e, attempt)) from None
                wait = _retry_after(e)
            except openai.APIConnectionError as e:  # also timeouts
                if attempt >= self.max_retries:
                    raise ServerError(self._failed(client, what, e, attempt)) from None
                wait = None
            except openai.APIError as e:  # e.g. an answer that is not the API's format
                raise ServerError(self._failed(client, what, e, attempt)) from None
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
    def generate(self, requests: list[GenRequest], max_new_tokens: int) -> list[str]:
        return self._map(lambda r: self._generate_one(r, max_new_tokens), requests)

    def _generate_one(self, req: GenRequest, max_new_tokens: int) -> str:
        chat = self.cfg.chat_template if req.chat is None else req.chat
        common = {"model": self.cfg.name, "temperature": 0, "max_tokens": max_new_tokens}
        if not chat:
            if req.images:
                raise ValueError("images need the chat endpoint (model.chat_template: true)")
            resp = self._call(lambda c: c.completions.create(prompt=req.text, **common), "completions")
            choice, text = resp.choices[0], resp.choices[0].text
        else:  # a text-only turn is a plain string, as the local engine gives a text-only model's template
            content = [{"type": "text", "text": req.text}] + [
                {"type": "image_url", "image_url": {"url": data_url(im)}} for im in req.images]
            messages = [{"role": "user", "content": content if req.images else req.text}]
            resp = self._call(lambda c: c.chat.completions.create(messages=messages, **common), "chat/completions")
            choice, text = resp.choices[0], resp.choices[0].message.content
        self.counts["hit_max_new_tokens"] += choice.finish_reason == "length"
        return text or ""

    # ------------------------------------------------------------------------------------------------ log-likelihoods
    def _loglikelihoods(self, requests: list[LLRequest], naive: bool = False):
        if not requests:
            return [], []
        self._check_prompt_logprobs()
        out = self._map(self._loglikelihood_one, self.encode_requests(requests))
        return [lls for lls, _ in out], [cut for _, cut in out]

    def _loglikelihood_one(self, encoded: tuple[list[int], list[list[int]]]) -> tuple[list[float], bool]:
        """One request: each continuation after the context, as token ids in one call (one choice each)."""
        ctx, conts = encoded
        # as the local engine: at most max_length tokens of input, i.e. max_length + 1 echoed (the last one only
        # scored), left-truncated and counted (the server must accept max_length + 1 prompt tokens and 1 new one)
        keep = self.max_length + 1 if self.max_length else 10 ** 9
        prompts = [(ctx + c)[-keep:] for c in conts]
        cut = any(len(ctx) + len(c) > keep for c in conts)
        resp = self._call(lambda cl: cl.completions.create(model=self.cfg.name, prompt=prompts, echo=True, logprobs=1,
                                                           max_tokens=1, temperature=0), "completions")
        choices = sorted(resp.choices, key=lambda ch: ch.index)
        lls = []
        for prompt, cont, choice in zip(prompts, conts, choices):
            lp = choice.logprobs.token_logprobs if choice.logprobs is not None else None
            n = min(len(cont), len(prompt) - 1)  # a continuation after at least one token of context
            if not lp or len(lp) < len(prompt) or any(x is None for x in lp[len(prompt) - n: len(prompt)]):
                raise ServerError(f"{_url(self.clients[0], 'completions')}: {NO_PROMPT_LOGPROBS}")
            lls.append(float(sum(lp[len(prompt) - n: len(prompt)])))
        if len(lls) != len(conts):
            raise ServerError(f"{_url(self.clients[0], 'completions')}: {len(choices)} choices for {len(conts)} "
                              "prompts (expected one per prompt)")
        return lls, cut  # counted by `loglikelihoods`, in the chunk whose records use the scores

    def _check_prompt_logprobs(self) -> None:
        """Once: does the server echo prompt log-probabilities at all? Asked with a text prompt, which every
        completions server takes (transformers serve refuses token ids, and ignores echo/logprobs with a warning)."""
        from nanoeval.runner import TaskError

        with self._probe_lock:
            if self._probed is True:
                return
            if self._probed is None:  # once known, every case of the task would hit it: reported once
                resp = self._call(lambda c: c.completions.create(model=self.cfg.name, prompt="Hello world", echo=True,
                                                                 logprobs=1, max_tokens=1, temperature=0),
                                  "completions")
                lp = resp.choices[0].logprobs
                self._probed = lp is not None and bool(lp.token_logprobs) and \
                    any(x is not None for x in lp.token_logprobs)
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
