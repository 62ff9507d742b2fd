"""An OpenAI-compatible chat endpoint with bounded concurrency and honest retries.

- ``openai.AsyncOpenAI`` with its own retries off (``max_retries=0``); retries are ours, with
  tenacity: exponential backoff with jitter on 429, 408, 5xx, timeouts, connection errors and
  bodies that are not a chat completion (truncated, not JSON, no choices), honouring
  ``Retry-After`` / ``retry-after-ms``; waits are ``asyncio.sleep`` (never a blocking sleep).
- One ``asyncio.Semaphore`` per endpoint bounds the requests in flight; it is released during
  backoff waits so one throttled request does not hold a slot.
- 401, 403 and 404 stop the run (:class:`FatalEndpointError`): a wrong key, model or URL would
  otherwise turn every sample into a failure.  Other 4xx fail the one call without retry.
- The API key is read from the environment when the client is built and never appears in an
  error message: every message is built from status codes and redacted (:func:`redact`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import email.utils
import heapq
import json
import math
import random
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import openai
from openai._constants import RAW_RESPONSE_HEADER
from openai.types.chat import ChatCompletion
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_base

from srpo_data.stage1.builder.config import EndpointConfig

#: Characters of a bad response body quoted in an error message.
BODY_EXCERPT_CHARS = 200
#: Connections per SDK client (see ``EndpointClient.__init__``).
POOL_SHARD = 8
#: Status codes that no retry can fix and that would hit every sample alike.
FATAL_STATUS = frozenset({401, 403, 404})


#: A run of this many characters of a secret is redacted even when the rest of it is absent
#: (a body cut by the server or a proxy, a key split over two lines).
SECRET_PART_CHARS = 8


def redact(text: str, secrets: list[str]) -> str:
    """``text`` with every secret (of 4+ characters) replaced by ``***``, and every run of
    :data:`SECRET_PART_CHARS` or more characters that is part of a secret as well.

    Redact *before* cutting a text to an excerpt (:func:`excerpt`): a cut inside a secret would
    otherwise leave its first part in clear."""
    for secret in secrets:
        if not secret or len(secret) < 4:
            continue
        text = text.replace(secret, "***")
        if len(secret) < SECRET_PART_CHARS:
            continue
        grams = {secret[i : i + SECRET_PART_CHARS] for i in range(len(secret) - SECRET_PART_CHARS + 1)}
        covered = [False] * len(text)
        for i in range(len(text) - SECRET_PART_CHARS + 1):
            if text[i : i + SECRET_PART_CHARS] in grams:
                for j in range(i, i + SECRET_PART_CHARS):
                    covered[j] = True
        if any(covered):
            out, i = [], 0
            while i < len(text):
                if covered[i]:
                    while i < len(text) and covered[i]:
                        i += 1
                    out.append("***")
                else:
                    out.append(text[i])
                    i += 1
            text = "".join(out)
    return text


def excerpt(text: str, secrets: list[str], limit: int = BODY_EXCERPT_CHARS) -> str:
    """The first ``limit`` characters of ``text`` after redaction (redact first, then cut)."""
    return redact(text, secrets)[:limit]


class EndpointError(Exception):
    """A call that did not return a usable chat completion.  ``reason`` is a short code."""

    def __init__(self, reason: str, detail: str = "", *, transient: bool, retry_after: float | None = None):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.transient = transient
        self.retry_after = retry_after


class FatalEndpointError(EndpointError):
    """The endpoint refuses every call (bad key, model or URL): the run must stop."""


@dataclass(frozen=True)
class ChatResult:
    """One successful chat completion."""

    content: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    #: HTTP tries this call took (1 = no retry).
    tries: int = 1
    #: The completion's ``id`` as the server gave it (for audits against server logs).
    response_id: str = ""


@dataclass
class Usage:
    """What one endpoint cost during this process (stored results reused cost nothing)."""

    requests: int = 0
    completions: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    #: Times the circuit breaker opened (see :class:`CircuitBreaker`).
    breaker_trips: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "breaker_trips": self.breaker_trips,
            "requests": self.requests,
            "completions": self.completions,
            "retries": self.retries,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "errors": dict(sorted(self.errors.items())),
        }


class PrioritySemaphore:
    """An asyncio semaphore whose waiters are served by priority (lower first), then FIFO.

    The builder gives a sample's first call (the attempt) priority over its later calls: new
    samples keep flowing and their later steps queue up as a backlog, so the endpoint stays
    busy through the tail of a run instead of idling while the last samples cross the teacher.
    """

    def __init__(self, value: int):
        if value < 1:
            raise ValueError("semaphore value must be >= 1")
        self._free = value
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = 0

    async def acquire(self, priority: int = 0) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._seq += 1
        heapq.heappush(self._waiters, (priority, self._seq, fut))
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # granted and cancelled at once: hand the slot on
            raise

    def release(self) -> None:
        while self._waiters:
            _, _, fut = heapq.heappop(self._waiters)
            if not fut.done():
                fut.set_result(None)
                return
        self._free += 1


class CircuitBreaker:
    """Trips when most recent HTTP tries of one endpoint failed transiently (an outage).

    - open (``cooldown`` seconds after a trip): no try is sent, callers wait in :meth:`wait`;
    - half-open (after the cooldown, until a try succeeds): tries go out as probes; a failed
      one reopens it at once with twice the cooldown (up to ``cooldown_max``);
    - closed again after the first success.
    While it is tripped (open or half-open) the builder admits no new sample except as a lone
    probe when nothing else is in flight, so an outage does not burn through the input."""

    def __init__(self, window: int, threshold: float, cooldown: float, cooldown_max: float):
        self.window, self.threshold = window, threshold
        self.base_cooldown, self.cooldown_max = cooldown, cooldown_max
        self.cooldown = cooldown
        self._recent: deque[bool] = deque(maxlen=window)
        self.open_until = 0.0
        self.tripped = False
        self.trips = 0

    @property
    def is_open(self) -> bool:
        return time.monotonic() < self.open_until

    def _trip(self) -> None:
        self.open_until = time.monotonic() + self.cooldown
        self.cooldown = min(self.cooldown * 2, self.cooldown_max)
        self.tripped = True
        self.trips += 1
        self._recent.clear()

    def record(self, ok: bool) -> None:
        if ok:
            self._recent.append(True)
            self.tripped = False
            self.cooldown = self.base_cooldown
            return
        if self.is_open:
            return  # a try sent before the trip: already counted in the outage
        if self.tripped:  # a failed probe
            self._trip()
            return
        self._recent.append(False)
        if len(self._recent) == self.window and self._recent.count(False) >= self.threshold * self.window:
            self._trip()

    async def wait(self) -> None:
        while True:
            left = self.open_until - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(left)


class _WaitRetryAfter(wait_base):
    """Exponential backoff with jitter, but never shorter than the server's Retry-After."""

    def __init__(self, cfg: EndpointConfig):
        self.cfg = cfg

    def __call__(self, retry_state: RetryCallState) -> float:
        n = retry_state.attempt_number  # 1 after the first failure
        base = min(self.cfg.backoff_max, self.cfg.backoff_initial * 2 ** (n - 1))
        wait = base + random.uniform(0, self.cfg.backoff_initial)
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.cfg.max_retry_after))
        return wait


def _http_date_seconds(value: str, now: float | None = None) -> float | None:
    """Seconds from now until an HTTP date (``Wed, 21 Oct 2026 07:28:00 GMT``); 0 if past."""
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _retry_after_seconds(headers: Any, now: float | None = None) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (delta seconds or an HTTP date)."""
    if headers is None:
        return None
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            if name != "retry-after":
                continue
            seconds_or_none = _http_date_seconds(str(value), now)
            if seconds_or_none is None:
                continue
            seconds = seconds_or_none
        if seconds >= 0 and seconds == seconds and seconds != float("inf"):
            return seconds
    return None


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, EndpointError) and exc.transient and not isinstance(exc, FatalEndpointError)


class EndpointClient:
    """Chat calls to one endpoint.  Build it inside the running event loop; ``await aclose()``."""

    def __init__(self, name: str, cfg: EndpointConfig):
        self.name = name
        self.cfg = cfg
        key = cfg.api_key()
        self._secrets = [key] if key != "EMPTY" else []
        # Several SDK clients, each with its own connection pool of about POOL_SHARD connections:
        # the HTTP pool scans every connection it holds on each request, so one pool of 64+
        # connections costs noticeable CPU per call at high concurrency.
        n_shards = max(1, math.ceil(cfg.concurrency / POOL_SHARD))
        self._clients = [
            openai.AsyncOpenAI(api_key=key, base_url=cfg.base_url, timeout=cfg.timeout, max_retries=0)
            for _ in range(n_shards)
        ]
        self._shard_load = [0] * n_shards
        self._sem = PrioritySemaphore(cfg.concurrency)
        self.usage = Usage()
        self.breaker = CircuitBreaker(
            cfg.breaker_window, cfg.breaker_threshold, cfg.breaker_cooldown, max(cfg.breaker_cooldown, cfg.backoff_max * 5)
        )

    async def aclose(self) -> None:
        for client in self._clients:
            await client.close()

    def _error(self, reason: str, detail: str, *, transient: bool, retry_after: float | None = None) -> EndpointError:
        detail = redact(detail, self._secrets)
        self.usage.errors[reason] += 1
        return EndpointError(reason, detail, transient=transient, retry_after=retry_after)

    def _request_body(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.cfg.model, "messages": messages}
        if self.cfg.temperature is not None:
            body["temperature"] = self.cfg.temperature
        if self.cfg.top_p is not None:
            body["top_p"] = self.cfg.top_p
        if self.cfg.max_tokens is not None:
            body["max_tokens"] = self.cfg.max_tokens
        if self.cfg.seed is not None:
            body["seed"] = self.cfg.seed
        body.update(self.cfg.extra_body)
        return body

    async def _once(self, messages: list[dict[str, Any]], priority: int = 0) -> ChatResult:
        await self.breaker.wait()
        await self._sem.acquire(priority)
        try:
            result = await self._once_holding(messages)
        except EndpointError as exc:
            if exc.transient:
                trips = self.breaker.trips
                self.breaker.record(False)
                self.usage.breaker_trips += self.breaker.trips - trips
            raise
        finally:
            self._sem.release()
        self.breaker.record(True)
        return result

    async def _once_holding(self, messages: list[dict[str, Any]]) -> ChatResult:
        self.usage.requests += 1
        shard = min(range(len(self._clients)), key=self._shard_load.__getitem__)
        self._shard_load[shard] += 1
        try:
            async with asyncio.timeout(self.cfg.timeout + 1.0):
                # The SDK's generic POST (its documented escape hatch for custom requests): the
                # body is already plain JSON, and skipping the typed-params transform of
                # ``chat.completions.create`` saves milliseconds of CPU per call at high
                # concurrency.  The raw-response header returns status and headers as well.
                raw = await self._clients[shard].post(
                    "/chat/completions",
                    cast_to=ChatCompletion,
                    body=self._request_body(messages),
                    options={"headers": {RAW_RESPONSE_HEADER: "true"}, "security": {"bearer_auth": True}},
                )
                status = raw.status_code
                completion = raw.parse()
        except openai.APIStatusError as exc:
            status = exc.status_code
            body = excerpt(str(getattr(exc.response, "text", "")), self._secrets)
            reason = f"http_{status}"
            if status in FATAL_STATUS:
                self.usage.errors[reason] += 1
                raise FatalEndpointError(
                    reason,
                    redact(f"{self.name} endpoint {self.cfg.base_url} model {self.cfg.model!r}: {body}", self._secrets),
                    transient=False,
                ) from None
            transient = status in (408, 409, 429) or status >= 500
            raise self._error(
                reason, body, transient=transient, retry_after=_retry_after_seconds(exc.response.headers)
            ) from None
        except (openai.APITimeoutError, TimeoutError):
            raise self._error("timeout", f"no answer within {self.cfg.timeout:g}s", transient=True) from None
        except openai.APIConnectionError as exc:
            cause = type(exc.__cause__).__name__ if exc.__cause__ else "connection"
            raise self._error("connection", cause, transient=True) from None
        except (openai.APIResponseValidationError, ValueError) as exc:
            # json.JSONDecodeError is a ValueError: a body cut short or not JSON at all.
            raise self._error("bad_body", type(exc).__name__, transient=True) from None
        finally:
            self._shard_load[shard] -= 1
        if not (200 <= status < 300):  # the SDK raises for these; keep the check explicit
            raise self._error(f"http_{status}", "unexpected status", transient=status >= 500)
        return self._to_result(completion)

    def _to_result(self, completion: Any) -> ChatResult:
        if not isinstance(completion, ChatCompletion):
            raise self._error("bad_body", f"not a chat completion: {excerpt(str(completion), self._secrets)!r}", transient=True)
        try:
            choice = completion.choices[0]
            content = choice.message.content
            finish_reason = str(choice.finish_reason)
        except (AttributeError, IndexError, TypeError):
            raise self._error("bad_body", "no choices/message in the completion", transient=True) from None
        # The SDK builds the completion without validating it: check every field we store, so a
        # bad body is a retried failure of this call, never a record that crashes later runs.
        if content is None and finish_reason in ("stop", "length"):
            raise self._error("bad_body", "completion without content", transient=True)
        if content is not None and not isinstance(content, str):
            raise self._error("bad_body", f"message.content is a {type(content).__name__}, not a string", transient=True)
        if not isinstance(choice.finish_reason, str):
            raise self._error("bad_body", f"finish_reason is a {type(choice.finish_reason).__name__}", transient=True)
        usage = getattr(completion, "usage", None)
        try:
            prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
            completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        except (TypeError, ValueError):
            raise self._error("bad_body", "usage token counts are not integers", transient=True) from None
        self.usage.completions += 1
        self.usage.prompt_tokens += prompt_tokens
        self.usage.completion_tokens += completion_tokens
        return ChatResult(
            content or "", finish_reason, prompt_tokens, completion_tokens, response_id=str(getattr(completion, "id", "") or "")
        )

    async def chat(self, messages: list[dict[str, Any]], priority: int = 0) -> ChatResult:
        """One chat completion, retried on transient errors; raises :class:`EndpointError`.

        ``priority``: lower values get a free slot first when requests wait for one."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.cfg.max_retries + 1),
            wait=_WaitRetryAfter(self.cfg),
            retry=retry_if_exception(_is_transient),
            sleep=asyncio.sleep,
            reraise=True,
        )
        tries = 0
        async for attempt in retrying:
            with attempt:
                tries += 1
                if tries > 1:
                    self.usage.retries += 1
                result = await self._once(messages, priority)
        return dataclasses.replace(result, tries=tries)


def parse_json_object(text: str) -> dict[str, Any] | None:
    """A JSON object from a model's reply, tolerating a ```json fence around it; None if not one."""
    s = text.strip()
    if s.startswith("```"):
        s = s.split("\n", 1)[1] if "\n" in s else ""
        if s.rstrip().endswith("```"):
            s = s.rstrip()[:-3]
    s = s.strip()
    try:
        obj = json.loads(s)
    except (json.JSONDecodeError, ValueError):
        start, end = s.find("{"), s.rfind("}")
        if start < 0 or end <= start:
            return None
        try:
            obj = json.loads(s[start : end + 1])
        except (json.JSONDecodeError, ValueError):
            return None
    return obj if isinstance(obj, dict) else None
