"""A small OpenAI-compatible server for the tests, speaking vLLM's completions format (what `transformers serve`
cannot: prompt log-probabilities). Log-probabilities come from a plain `AutoModelForCausalLM` forward pass, not
from NanoEval's engine, so the backend's numbers are checked against an independent computation.

    python tests/openai_server.py --model DIR [--name NAME] [--port 0] [--fault SPEC] [--log FILE] [--api-key K]
                                  [--root ROOT] [--created T]

GET /v1/models lists NAME with `root` (--root, default DIR, as vLLM does; "" leaves it out) and `created`
(--created: a time, default 0; `now`: the time of each request, as vLLM's ModelCard; "" leaves it out).
POST /v1/completions takes `prompt` as a string, a list of strings, token ids or a list of token-id lists; with
`echo: true` and `logprobs` each choice carries the prompt's tokens and their log-probabilities (the first token's
is null), then `max_tokens` greedy tokens. With `stop` (a string or a list), generation ends once a stop string
appears in the new tokens' text (special tokens skipped, as vLLM), the text is cut before the earliest one and the
finish_reason is "stop". POST /v1/chat/completions takes text-only messages through the tokenizer's chat template
(with the generation prompt), then the same greedy tokens and `stop`. Every response is validated against the
openai package's types (`Completion`, `ChatCompletion`) before it is sent. Prints `port N` once listening.

Faults (--fault, the tests' own switch), on /v1/completions only:
  429xK      the first K requests get 429 Too Many Requests, then normal answers
  500        every request gets 500
  400        every request gets 400 (vLLM's error body)
  sleep:S    each request waits S seconds before answering
  die-after:K  answers K requests, then the process exits on the next one (a server killed mid-run)
Broken answers (a 200 that is not the API's format), chosen by the base URL: http://127.0.0.1:PORT/MODE/v1
(no shared state, so one server serves every mode). MODE is one of BROKEN's keys (`models-*` break GET
/v1/models, the others every POST: completions and chat/completions), or spoils a real completions answer:
`positive-logprob` (every log-probability made positive), `duplicate-index` (every choice's index 0), or
`ignore-stop` (a server that does not honour `stop`). More than 4 stop strings get 400, as from OpenAI's API.
--log FILE gets one JSON line per completions request: {"status": ..., "prompts": n, "in_flight": requests being
answered when it arrived, itself included}.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HTML = "<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body><h1>Proxy: sign in</h1></body></html>"
# MODE -> (Content-Type, body): answers sent as they are, without running the model
BROKEN = {
    "html": ("text/html", HTML), "text": ("text/plain", "upstream ok"),
    "json-list": ("application/json", [{"index": 0, "text": " A", "finish_reason": "stop"}]),
    "choices-string": ("application/json", {"id": "cmpl-1", "object": "text_completion", "choices": " A"}),
    "message-null": ("application/json", {"id": "chat-1", "object": "chat.completion", "choices": [
        {"index": 0, "message": None, "finish_reason": "stop"}]}),
    "no-text": ("application/json", {"id": "cmpl-1", "object": "text_completion", "choices": [
        {"index": 0, "finish_reason": "stop"}]}),
    "models-html": ("text/html", HTML),
    "models-list": ("application/json", [{"id": "tiny-served", "object": "model"}]),
    "models-no-data": ("application/json", {"object": "list", "models": ["tiny-served"]}),
}
SPOILED = ("positive-logprob", "duplicate-index", "ignore-stop")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--name")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--fault", default="")
    p.add_argument("--log")
    p.add_argument("--api-key")
    p.add_argument("--root")
    p.add_argument("--created", default="0")
    args = p.parse_args()

    import torch
    from openai.types import Completion
    from openai.types.chat import ChatCompletion
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
    name = args.name or args.model
    lock, seen = threading.Lock(), {"n": 0, "in_flight": 0}

    def complete(ids: list[int], echo: bool, logprobs, max_tokens: int, stop: list[str] = ()) -> dict:
        stopped = None  # with `stop`: the new tokens' text (special tokens skipped, as vLLM) cut before a stop
        with torch.inference_mode():
            new = []
            for _ in range(max_tokens):  # greedy, one token at a time (plain and obviously right)
                logits = model(torch.tensor([ids + new])).logits[0].float()
                nxt = int(logits[-1].argmax())
                new.append(nxt)
                if nxt == tok.eos_token_id:
                    break
                text = tok.decode(new, skip_special_tokens=True) if stop else ""
                at = [text.find(s) for s in stop if s in text]
                if at:
                    stopped = text[:min(at)]
                    break
            full = ids + new
            lp = torch.log_softmax(model(torch.tensor([full])).logits[0].float(), -1)
        token_lps = [None] + [float(lp[i - 1, full[i]]) for i in range(1, len(full))]
        shown = full if echo else new
        lps = token_lps if echo else token_lps[len(ids):]
        # new tokens' text without special tokens, as vLLM writes it (echoed: as they are)
        text = stopped if stopped is not None else tok.decode(shown, skip_special_tokens=not echo)
        choice = {"text": text, "finish_reason": "length" if len(new) >= max_tokens and new[-1:] != [
            tok.eos_token_id] and stopped is None else "stop"}
        if logprobs is not None:
            tokens = [tok.decode([t]) for t in shown]
            offsets = [sum(len(t) for t in tokens[:i]) for i in range(len(tokens))]
            choice["logprobs"] = {"tokens": tokens, "token_logprobs": lps, "text_offset": offsets,
                                  "top_logprobs": [None if x is None else {t: x} for t, x in zip(tokens, lps)]}
        return choice

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):  # quiet
            pass

        def send(self, status: int, body: dict | list | str, headers: dict | None = None,
                 content_type: str = "application/json") -> None:
            self.finished()  # before the client can see the answer (and send its next request)
            data = (body if isinstance(body, str) else json.dumps(body)).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def authorized(self) -> bool:
            if args.api_key and self.headers.get("Authorization") != f"Bearer {args.api_key}":
                self.send(401, {"object": "error", "message": "invalid API key", "type": "AuthenticationError",
                                "code": 401})
                return False
            return True

        def route(self) -> tuple[str, str]:
            """(MODE, path from /v1 on): a base URL http://host:port/MODE/v1 picks a broken answer."""
            path = self.path.rstrip("/")
            mode, _, rest = path.lstrip("/").partition("/")
            return ("", path) if mode == "v1" else (mode, "/" + rest)

        def do_GET(self):
            if not self.authorized():
                return
            mode, path = self.route()
            if mode and mode not in BROKEN and mode not in SPOILED:
                self.send(404, {"object": "error", "message": f"no mode {mode}", "code": 404})
            elif path == "/v1/models" and mode in BROKEN and mode.startswith("models-"):
                content_type, body = BROKEN[mode]
                self.send(200, body, content_type=content_type)
            elif path == "/v1/models":
                entry = {"id": name, "object": "model", "owned_by": "vllm", "max_model_len": 512}
                root = args.model if args.root is None else args.root
                if root:
                    entry["root"] = root
                if args.created:
                    entry["created"] = int(time.time()) if args.created == "now" else int(args.created)
                self.send(200, {"object": "list", "data": [entry]})
            else:
                self.send(404, {"object": "error", "message": f"no route {self.path}", "code": 404})

        def do_POST(self):
            if not self.authorized():
                return
            with lock:
                seen["in_flight"] += 1
            self.counted = True
            try:
                self.complete()
            finally:
                self.finished()

        def finished(self) -> None:
            """This request no longer counts as in flight (once)."""
            if getattr(self, "counted", False):
                self.counted = False
                with lock:
                    seen["in_flight"] -= 1

        def complete(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            mode, path = self.route()
            if mode and mode not in BROKEN and mode not in SPOILED:
                return self.send(404, {"object": "error", "message": f"no mode {mode}", "code": 404})
            if mode in BROKEN and not mode.startswith("models-"):
                content_type, broken = BROKEN[mode]
                return self.send(200, broken, content_type=content_type)
            if path == "/v1/chat/completions":
                return self.chat(body)
            if path != "/v1/completions":
                return self.send(404, {"object": "error", "message": f"no route {self.path}", "code": 404})
            with lock:
                seen["n"] += 1
                n, in_flight = seen["n"], seen["in_flight"]
            status = self.fault(n)
            prompts = body.get("prompt")
            if isinstance(prompts, str) or (isinstance(prompts, list) and prompts and isinstance(prompts[0], int)):
                prompts = [prompts]
            if args.log:
                with lock, open(args.log, "a") as f:
                    entry = {"status": status or 200, "prompts": len(prompts), "in_flight": in_flight}
                    f.write(json.dumps(entry) + "\n")
            if status:
                message = {429: "rate limit exceeded, slow down", 500: "fake: internal server error",
                           400: "fake: This model's maximum context length is 512 tokens"}[status]
                return self.send(status, {"object": "error", "message": message, "type": "BadRequestError",
                                          "param": None, "code": status})
            if body.get("model") != name:
                return self.send(404, {"object": "error", "message": f"The model `{body.get('model')}` does "
                                       "not exist.", "type": "NotFoundError", "code": 404})
            if self.too_many_stops(body):
                return
            with lock:  # one forward pass at a time
                choices = [complete(tok(p)["input_ids"] if isinstance(p, str) else list(p), bool(body.get("echo")),
                                    body.get("logprobs"), int(body.get("max_tokens") or 16), self.stops(body))
                           for p in prompts]
            out = {"id": f"cmpl-{n}", "object": "text_completion", "created": int(time.time()), "model": name,
                   "choices": [{"index": i, **c} for i, c in enumerate(choices)]}
            Completion.model_validate(typed(out))  # vLLM's documented format, as the openai package types it
            for c in out["choices"]:
                if mode == "positive-logprob" and c.get("logprobs"):
                    c["logprobs"]["token_logprobs"] = [None if x is None else abs(x) + 0.5
                                                       for x in c["logprobs"]["token_logprobs"]]
                if mode == "duplicate-index":
                    c["index"] = 0
            self.send(200, out)

        def stops(self, body: dict) -> list[str]:
            """The request's `stop` (a string or a list of them), unless the base URL's mode is `ignore-stop` (a
            server that does not honour it)."""
            stop = body.get("stop") or []
            return [] if self.route()[0] == "ignore-stop" else [stop] if isinstance(stop, str) else list(stop)

        def too_many_stops(self, body: dict) -> bool:
            """OpenAI's API takes at most 4 stop strings (400 for more); vLLM takes any number. Answered here."""
            if isinstance(body.get("stop"), list) and len(body["stop"]) > 4:
                self.send(400, {"object": "error", "message": "'stop' may hold at most 4 items", "type":
                                "BadRequestError", "param": "stop", "code": 400})
                return True
            return False

        def chat(self, body: dict) -> None:
            """A text-only chat turn: the tokenizer's chat template with the generation prompt, then greedy
            tokens as for a completion (no faults, no log-probabilities)."""
            if body.get("model") != name:
                return self.send(404, {"object": "error", "message": f"The model `{body.get('model')}` does "
                                       "not exist.", "type": "NotFoundError", "code": 404})
            if self.too_many_stops(body):
                return
            messages = [{"role": m["role"], "content": m["content"] if isinstance(m["content"], str) else "".join(
                part["text"] for part in m["content"] if part["type"] == "text")} for m in body["messages"]]
            prompt = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            with lock:
                choice = complete(tok(prompt, add_special_tokens=False)["input_ids"], False, None,
                                  int(body.get("max_tokens") or 16), self.stops(body))
            out = {"id": "chat-1", "object": "chat.completion", "created": int(time.time()), "model": name,
                   "choices": [{"index": 0, "message": {"role": "assistant", "content": choice["text"]},
                                "finish_reason": choice["finish_reason"]}]}
            ChatCompletion.model_validate(out)
            self.send(200, out)

        def fault(self, n: int) -> int | None:
            kind, _, arg = args.fault.partition(":")
            if kind.startswith("429x") and n <= int(kind[4:]):
                return 429
            if kind in ("500", "400"):
                return int(kind)
            if kind == "sleep":
                time.sleep(float(arg))
            if kind == "die-after" and n > int(arg):
                os._exit(1)
            return None

    def typed(out: dict) -> dict:
        """The response as the openai types see it: vLLM echoes a null log-probability for the prompt's first
        token (nothing precedes it), which `Logprobs` does not allow; that one position is left out of the check."""
        out = json.loads(json.dumps(out))
        for c in out["choices"]:
            lp = c.get("logprobs")
            if lp and lp["token_logprobs"] and lp["token_logprobs"][0] is None:
                for k in ("tokens", "token_logprobs", "text_offset", "top_logprobs"):
                    lp[k] = lp[k][1:]
        return out

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"port {server.server_address[1]}", flush=True)
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
