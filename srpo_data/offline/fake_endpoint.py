"""A small OpenAI-compatible chat server for tests and benchmarks (no model: scripted answers).

It speaks plain HTTP/1.1 with keep-alive on ``asyncio`` streams (so it can also misbehave at
the byte level) and answers ``POST /v1/chat/completions`` deterministically from the request:

- the *attempt* (no reflection prompt in the messages): ``<think>..</think> <answer>\\boxed{X}
  </answer>`` where X is right or wrong depending on a hash of the question, the answer key
  (``answers``: question -> ground truth) and ``right_rate``; a few get a broken format;
- the *reflection* (system prompt of the teacher): ``{"reflection": "..."}`` (sometimes not JSON
  when ``bad_json_rate`` > 0, decided per request body so a retry can succeed);
- the *judge* ("Rate the reasoning" in the prompt): ``{"score": n}``;
- a *corrective turn* (the builder's retry after a reply that was not JSON: the request ends
  with an assistant turn and a user turn): answered as an instruction-following model would,
  with the JSON object that last user turn asks for (``{"score": ...}`` or
  ``{"reflection": ...}``), whatever the step; a turn that asks for neither gets prose;
- the *revision* ("Your reflection on it:" in the prompt): right unless the hash says otherwise.

Faults (``fault_rate``, drawn per request from a seeded RNG): 429 with Retry-After, 500, a hang
longer than the client's timeout, a truncated body, a non-JSON body.  ``delay`` makes every
answer wait that long (the benchmark's fixed-latency endpoint).  ``api_key`` makes it demand
``Authorization: Bearer <key>``; ``echo_auth`` makes its error bodies quote that header, the way
a careless proxy would, to test that the builder redacts it.

Run it alone: ``python -m srpo_data.offline.fake_endpoint --port 8001 --delay 0.5``.
"""

from __future__ import annotations

import argparse
import asyncio
import email.utils
import hashlib
import json
import math
import random
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

FAULTS = ("429", "500", "hang", "truncated", "not_json")
#: Faults that are never drawn unless named in ``Script.faults``: a 200 whose
#: ``message.content`` is a list or a number (the SDK does not validate it).
EXTRA_FAULTS = ("bad_content",)


def _h(text: str, salt: str = "") -> int:
    return int.from_bytes(hashlib.sha256((salt + text).encode("utf-8")).digest()[:8], "big")


def _wrong(gt: str) -> str:
    if re.fullmatch(r"[A-E]", gt.strip()):
        return "ABCDE"[("ABCDE".index(gt.strip()) + 1) % 5]
    try:
        return str(float(gt) + 1).removesuffix(".0")
    except ValueError:
        return gt + "0"


@dataclass
class Script:
    """How the fake answers (all decisions are hashes of the request, so reruns agree)."""

    #: ``[q:ID]`` tag (or the whole question text) -> ground truth.
    answers: dict[str, str] = field(default_factory=dict)
    right_rate: float = 0.4
    revise_right_rate: float = 0.8
    bad_format_rate: float = 0.1
    bad_json_rate: float = 0.0
    delay: float = 0.0
    fault_rate: float = 0.0
    faults: tuple[str, ...] = FAULTS
    retry_after: float = 0.2
    hang_seconds: float = 5.0
    seed: int = 0
    api_key: str | None = None
    echo_auth: bool = False
    #: A request that carries a corrective turn (an assistant message: the builder's retry
    #: after a reply that was not JSON) is always answered with the JSON that turn asks for.
    json_on_correction: bool = False
    #: Send Retry-After as an HTTP date (``Wed, 21 Oct 2026 07:28:00 GMT``) instead of
    #: Retry-After-Ms.
    retry_after_http_date: bool = False
    #: Replaces :func:`scripted_reply` (same signature): a task's own scripted texts, e.g.
    #: :func:`srpo_data.offline.learn_task.scripted_reply`.  Faults, delays and keys still apply.
    reply: Any = None


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            return _text_of([m])[1]
    return ""


def _asked_for(body: dict[str, Any]) -> str | None:
    """The JSON object a corrective turn asks for (``score``, ``reflection``) or None."""
    asked = _last_user_text(body.get("messages", []))
    for name in ("score", "reflection"):
        if '{"%s"' % name in asked:
            return name
    return None


def _text_of(messages: list[dict[str, Any]]) -> tuple[str, str]:
    """(system text, user text) of a request."""
    system, user = "", ""
    for m in messages:
        content = m.get("content")
        if isinstance(content, list):
            content = " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
        if m.get("role") == "system":
            system += str(content)
        elif m.get("role") == "user":
            user += str(content)
    return system, user


_TAG_RE = re.compile(r"\[q:([\w-]+)\]")


def _question_of(user: str, script: Script) -> tuple[str, str]:
    """(question key, ground truth): a ``[q:ID]`` tag in the question is looked up first."""
    m = _TAG_RE.search(user)
    if m and m.group(1) in script.answers:
        return m.group(1), script.answers[m.group(1)]
    for q, a in script.answers.items():
        if q in user:
            return q, a
    return user[:200], "0"


def scripted_reply(body: dict[str, Any], script: Script, nth: int = 0) -> str:
    """The scripted content for a request; ``nth`` counts earlier answers to the same body."""
    if script.reply is not None:
        return script.reply(body, script, nth)
    system, user = _text_of(body.get("messages", []))
    q, gt = _question_of(user, script)
    frac = lambda salt: (_h(q, salt) % 10_000) / 10_000  # noqa: E731
    corrected = any(m.get("role") == "assistant" for m in body.get("messages", []))
    bad_json = not (script.json_on_correction and corrected) and bool(script.bad_json_rate) and (
        _h(json.dumps(body, sort_keys=True), f"json{nth}") % 10_000
    ) / 10_000 < script.bad_json_rate
    # a corrective turn gets the object it asks for, even when that is not this step's object
    asked = _asked_for(body) if corrected else None
    judge = "Rate the reasoning" in user
    if judge or system:
        if bad_json:
            return "I would say about seven." if judge else "Sure! Here is my reflection: the second step is wrong"
        if corrected and asked is None:
            return "I am not sure which JSON object you want."
    if asked == "score" or (judge and not corrected):  # the judge: a score from 1 to 10, a hash of the question
        return json.dumps({"score": 1 + _h(q, "judge") % 10})
    if system or asked == "reflection":  # the teacher's reflection
        # the verdict line of prompts/reflection.txt ("The student's answer is {verdict}."); the bare phrase
        # "answer is wrong" is also in that prompt's instructions, so it matched every request
        verdict = "wrong" if "The student's answer is wrong." in user else "right"
        return json.dumps({"reflection": f"I should re-check my work; my answer looks {verdict} because step two needs care."})
    if "Your reflection on it:" in user:
        ans = gt if frac("rev") < script.revise_right_rate else _wrong(gt)
        return f"<think>Re-doing the computation carefully for: {q[:40]}</think> <answer>\\boxed{{{ans}}}</answer>"
    if frac("fmt") < script.bad_format_rate:
        return f"The answer is \\boxed{{{gt}}}."
    ans = gt if frac("first") < script.right_rate else _wrong(gt)
    return f"<think>Reading the figure for: {q[:40]}</think> <answer>\\boxed{{{ans}}}</answer>"


def completion(body: dict[str, Any], content: str, request_digest: str = "") -> dict[str, Any]:
    prompt_chars = len(json.dumps(body.get("messages", [])))
    return {
        "id": f"chatcmpl-{request_digest or 'fake'}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "fake"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": prompt_chars // 4,
            "completion_tokens": len(content) // 4,
            "total_tokens": prompt_chars // 4 + len(content) // 4,
        },
    }


class FakeEndpoint:
    """The server.  ``start_in_thread()`` -> base URL; ``stop()``.  ``log`` records every request."""

    def __init__(self, script: Script, host: str = "127.0.0.1", port: int = 0):
        self.script = script
        self.host, self.port = host, port
        self.rng = random.Random(script.seed)
        #: (time, body sha256, status or fault, retry_after) per chat request.
        self.log: list[tuple[float, str, str, float | None]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._answered: dict[str, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None

    # --------------------------------------------------------------- HTTP plumbing
    async def _read_request(self, reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes] | None:
        line = await reader.readline()
        if not line:
            return None
        method, path, _ = line.decode("latin-1").split(" ", 2)
        headers: dict[str, str] = {}
        while True:
            h = await reader.readline()
            if h in (b"\r\n", b"\n", b""):
                break
            k, _, v = h.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
        return method, path, headers, body

    @staticmethod
    def _response(status: int, body: bytes, ctype: str = "application/json", extra: dict[str, str] | None = None,
                  content_length: int | None = None) -> bytes:
        reason = {200: "OK", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error"}
        head = [f"HTTP/1.1 {status} {reason.get(status, 'X')}", f"Content-Type: {ctype}",
                f"Content-Length: {len(body) if content_length is None else content_length}"]
        head += [f"{k}: {v}" for k, v in (extra or {}).items()]
        return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                req = await self._read_request(reader)
                if req is None:
                    break
                method, path, headers, body = req
                keep = await self._dispatch(method, path, headers, body, writer)
                await writer.drain()
                if not keep:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            try:
                writer.close()
            except Exception:  # noqa: BLE001 - the peer may be gone already
                pass

    async def _dispatch(self, method: str, path: str, headers: dict[str, str], raw: bytes, writer: asyncio.StreamWriter) -> bool:
        s = self.script
        auth = headers.get("authorization", "")
        if s.api_key is not None and auth != f"Bearer {s.api_key}":
            msg = {"error": {"message": "bad key" + (f" {auth}" if s.echo_auth else "")}}
            writer.write(self._response(401, json.dumps(msg).encode()))
            return True
        if method == "GET" and path.rstrip("/").endswith("/models"):
            writer.write(self._response(200, json.dumps({"object": "list", "data": [{"id": "fake", "object": "model"}]}).encode()))
            return True
        if not (method == "POST" and path.rstrip("/").endswith("/chat/completions")):
            writer.write(self._response(404, b'{"error": {"message": "not found"}}'))
            return True
        body = json.loads(raw)
        digest = hashlib.sha256(raw).hexdigest()[:16]
        fault = self.rng.choice(s.faults) if s.fault_rate and self.rng.random() < s.fault_rate else None
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if s.delay:
                await asyncio.sleep(s.delay)
            echo = f" auth={auth}" if s.echo_auth else ""
            if fault == "429":
                self.log.append((time.monotonic(), digest, "429", s.retry_after))
                err = json.dumps({"error": {"message": "slow down" + echo}}).encode()
                if s.retry_after_http_date:
                    # an HTTP date has whole seconds: round up so the wait is never shorter
                    when = email.utils.formatdate(math.ceil(time.time() + s.retry_after), usegmt=True)
                    writer.write(self._response(429, err, extra={"Retry-After": when}))
                else:
                    writer.write(self._response(429, err, extra={"Retry-After-Ms": str(int(s.retry_after * 1000))}))
                return True
            if fault == "500":
                self.log.append((time.monotonic(), digest, "500", None))
                writer.write(self._response(500, json.dumps({"error": {"message": "boom" + echo}}).encode()))
                return True
            if fault == "hang":
                self.log.append((time.monotonic(), digest, "hang", None))
                await asyncio.sleep(s.hang_seconds)
                return False
            nth = self._answered.get(digest, 0)
            self._answered[digest] = nth + 1
            content = scripted_reply(body, s, nth)
            data = json.dumps(completion(body, content, digest)).encode()
            if fault == "bad_content":
                self.log.append((time.monotonic(), digest, "bad_content", None))
                bad = completion(body, "", digest)
                bad["choices"][0]["message"]["content"] = [{"type": "text", "text": content}] if nth % 2 == 0 else 42
                writer.write(self._response(200, json.dumps(bad).encode()))
                return True
            if fault == "truncated":
                self.log.append((time.monotonic(), digest, "truncated", None))
                writer.write(self._response(200, data[: len(data) // 2], content_length=len(data)))
                return False
            if fault == "not_json":
                self.log.append((time.monotonic(), digest, "not_json", None))
                writer.write(self._response(200, b"<html>502 bad gateway" + echo.encode() + b"</html>"))
                return True
            self.log.append((time.monotonic(), digest, "200", None))
            writer.write(self._response(200, data))
            return True
        finally:
            self.in_flight -= 1

    # --------------------------------------------------------------- lifecycle
    async def start(self) -> str:
        self._server = await asyncio.start_server(self._handle, self.host, self.port, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.base_url

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start_in_thread(self) -> str:
        ready = threading.Event()

        def main() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self.start())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=main, name="fake-endpoint", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake endpoint did not start")
        return self.base_url

    def stop(self) -> None:
        if self._loop is None:
            return
        loop = self._loop

        def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            loop.stop()

        loop.call_soon_threadsafe(shutdown)
        if self._thread is not None:
            self._thread.join(5)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="scripted OpenAI-compatible chat server (tests, benchmarks)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--fault-rate", type=float, default=0.0)
    p.add_argument("--answers", help="JSON file: question -> ground truth")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bad-format-rate", type=float, default=0.1, help="share of attempts without the two blocks")
    p.add_argument("--right-rate", type=float, default=0.4, help="share of first attempts with the right answer")
    p.add_argument("--revise-right-rate", type=float, default=0.8, help="share of revisions with the right answer")
    p.add_argument("--reply", help="MODULE:FUNCTION that writes the replies instead "
                   "(e.g. srpo_data.offline.learn_task:scripted_reply)")
    args = p.parse_args(argv)
    reply = None
    if args.reply:
        import importlib

        module, _, name = args.reply.partition(":")
        reply = getattr(importlib.import_module(module), name)
    answers = json.loads(open(args.answers, encoding="utf-8").read()) if args.answers else {}
    server = FakeEndpoint(Script(answers=answers, delay=args.delay, fault_rate=args.fault_rate, seed=args.seed,
                           bad_format_rate=args.bad_format_rate, right_rate=args.right_rate,
                           revise_right_rate=args.revise_right_rate, reply=reply), args.host, args.port)

    async def serve() -> None:
        url = await server.start()
        print(url, flush=True)
        await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
