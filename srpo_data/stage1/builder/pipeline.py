"""The async run: every sample goes attempt -> grade -> reflection -> revision -> filter.

Each paid call is looked up in the step store first (key: :func:`steps.step_key`); a call is
made only when its key is absent, and its result is appended durably before the sample moves
on.  So a rerun replays stored steps for free and continues where the last run stopped.  A
sample whose step failed (retries exhausted, or the teacher never returned valid JSON) is
recorded in ``failures.jsonl`` under that step's key and skipped on reruns unless
``retry_failed`` is set.  Drops (the filter) are recomputed from stored steps on every run: they
cost nothing and follow the current code.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from srpo_data.stage1.builder.client import ChatResult, EndpointClient, EndpointError, FatalEndpointError
from srpo_data.stage1.builder.config import BuildConfig
from srpo_data.stage1.builder.inputs import BadRow, Sample, data_url
from srpo_data.stage1.builder.steps import (
    attempt_messages,
    build_target,
    corrective_messages,
    judge_messages,
    parse_judge_score,
    parse_reflection,
    parse_two_blocks,
    quotes_ground_truth,
    reflection_messages,
    revise_messages,
    step_key,
)
from srpo_data.stage1.builder.store import IndexedJsonlStore, JsonlStore

KEPT, DROPPED, FAILED, INTERRUPTED = "kept", "dropped", "failed", "interrupted"
#: Lower goes first when calls wait for a slot of the same endpoint.
STEP_PRIORITY = {"attempt": 0, "judge": 1, "reflection": 1, "revision": 2}

GradeFn = Callable[[str | None, str, float], Any]


def default_grader(pred: str | None, gold: str, timeout: float) -> Any:
    from srpo_reward.grading import grade_answer

    return grade_answer(pred, gold, timeout=timeout)


@dataclass
class Outcome:
    sample_id: str
    row: int
    status: str
    reason: str = ""
    first_correct: bool | None = None
    target: str | None = None
    #: Steps that have a stored result (attempt, reflection, revision).
    steps_done: tuple[str, ...] = ()
    #: Tokens of the stored calls this sample used, per endpoint role.
    tokens: dict[str, dict[str, int]] = field(default_factory=dict)
    #: The key its failure is filed under in failures.jsonl (status failed only).
    failure_key: str = ""
    source_id: str = ""
    #: The judge's score of the first attempt (None: no judge configured, or not reached).
    judge_score: float | None = None


def image_urls(sample: Sample, prefix: str | None = None) -> list[str]:
    """How the images travel: ``prefix + relative path`` when a prefix is set and the input gave
    paths (JSONL), else base64 data URLs."""
    if prefix and sample.image_refs:
        return [prefix + ref for ref in sample.image_refs]
    return [data_url(b) for b in sample.images]


class StepFailed(Exception):
    """A step that cannot finish in this run; ``key`` is the step key its failure is filed under.

    ``transient``: the endpoint failed (timeouts, 429, 5xx, bad bodies after every retry); the
    next run tries the step again by itself.  Other failures (a teacher that never wrote JSON,
    a 4xx) are skipped by later runs unless ``--retry-failed``."""

    def __init__(self, step: str, reason: str, detail: str = "", key: str = "", transient: bool = False):
        super().__init__(f"{step}:{reason}")
        self.step, self.reason, self.detail, self.key, self.transient = step, reason, detail, key, transient


def valid_step_record(rec: dict[str, Any]) -> bool:
    """A stored call the pipeline can use (older versions stored unchecked replies)."""
    return (
        isinstance(rec.get("key"), str)
        and isinstance(rec.get("content"), str)
        and isinstance(rec.get("finish_reason"), str)
        and isinstance(rec.get("role"), str)
    )


class Stopping(Exception):
    """The user asked to stop; the sample is left for the next run."""


class Runner:
    """Holds clients, stores and counters of one run.  Use :meth:`run` from ``asyncio.run``."""

    def __init__(self, cfg: BuildConfig, grader: GradeFn = default_grader):
        self.cfg = cfg
        self.grader = grader
        cfg.out.mkdir(parents=True, exist_ok=True)
        self.store = IndexedJsonlStore(cfg.out / "steps.jsonl", valid=valid_step_record)
        self.failures = JsonlStore(cfg.out / "failures.jsonl", keep="last")
        self.stop: asyncio.Event | None = None  # created inside the running loop by run()
        self.fatal: FatalEndpointError | None = None
        self.clients: dict[str, EndpointClient] = {}

    # ------------------------------------------------------------------ one paid step
    async def _call(
        self,
        sample: Sample,
        step: str,
        role: str,
        key: str,
        messages: Callable[[], list[dict[str, Any]]],
        try_index: int = 0,
        report_key: str | None = None,
    ) -> dict[str, Any]:
        """The stored reply under ``key``, or a new call stored under it.  A failure is filed
        under ``report_key`` (the step's first try; default ``key``)."""
        report_key = report_key or key
        rec = self.store.get(key)
        if rec is not None:
            return rec
        if self.stop is not None and self.stop.is_set():
            raise Stopping()
        self._raise_recorded(step, report_key)
        client = self.clients[role]
        try:
            # Attempts get free slots first; later steps build a backlog (see PrioritySemaphore).
            result: ChatResult = await client.chat(messages(), priority=STEP_PRIORITY[step])
        except FatalEndpointError as exc:
            self.fatal = exc
            assert self.stop is not None
            self.stop.set()
            raise Stopping() from None
        except EndpointError as exc:
            raise StepFailed(step, exc.reason, exc.detail, key=report_key, transient=exc.transient) from None
        rec = {
            "key": key,
            "sample_id": sample.sample_id,
            "step": step,
            "try": try_index,
            "role": role,
            "content": result.content,
            "finish_reason": result.finish_reason,
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "http_tries": result.tries,
            "response_id": result.response_id,
            "time": round(time.time(), 3),
        }
        await asyncio.to_thread(self.store.append, rec)
        return rec

    def _skip_failure(self, fail: dict[str, Any] | None) -> bool:
        """A recorded failure that this run does not try again (transient ones are retried)."""
        return fail is not None and not self.cfg.retry_failed and not fail.get("transient", False)

    def _raise_recorded(self, step: str, key: str) -> None:
        """Raise the failure recorded under ``key`` if this run does not try it again."""
        fail = self.failures.get(key)
        if self._skip_failure(fail):
            assert fail is not None
            raise StepFailed(step, fail.get("reason", "failed"), "recorded in failures.jsonl", key=key)

    async def _until_parsed(
        self,
        sample: Sample,
        step: str,
        role: str,
        key_at: Callable[[int], str],
        messages: Callable[[], list[dict[str, Any]]],
        parse: Callable[[dict[str, Any]], tuple[Any, str]],
        used: Callable,
        bad_reason: str,
    ) -> tuple[Any, str]:
        """Ask for a JSON step until ``parse(reply)`` gives a value (not None); returns it and
        the key of the try that gave it.  Try ``i`` is stored under ``key_at(i)``; a retry shows
        the model its reply and what was wrong with it (a corrective turn that asks again for
        ``step``'s own JSON, :data:`steps.FIX_PROMPTS`).  After
        ``json_retries`` more tries the step fails with ``bad_reason``; ``--retry-failed``
        grants a fresh budget after the stored tries."""
        cfg = self.cfg
        k0 = key_at(0)
        limit = cfg.json_retries + 1
        if cfg.retry_failed and self.failures.get(k0) is not None:
            stored = 0
            while key_at(stored) in self.store:
                stored += 1
            limit = max(limit, stored + cfg.json_retries + 1)
        prev: dict[str, Any] | None = None
        why = ""
        for i in range(10**6):
            k = key_at(i)
            if k not in self.store:
                if i >= limit:
                    raise StepFailed(step, bad_reason, why, key=k0)
                self._raise_recorded(step, k0)

            def msgs(prev: dict[str, Any] | None = prev, why: str = why) -> list[dict[str, Any]]:
                return messages() if prev is None else corrective_messages(messages(), prev["content"], why, step)

            rec = await self._call(sample, step, role, k, msgs, i, report_key=k0)
            used(rec)
            value, why = parse(rec)
            if value is not None:
                return value, k
            prev = rec
        raise AssertionError("unreachable")

    async def _grade(self, pred: str | None, gold: str) -> Any:
        return await asyncio.to_thread(self.grader, pred, gold, self.cfg.grade_timeout)

    def _image_urls(self, sample: Sample) -> list[str]:
        return image_urls(sample, self.cfg.image_url_prefix)

    # ------------------------------------------------------------------ one sample
    async def process(self, sample: Sample) -> Outcome:
        done: list[str] = []
        tokens: dict[str, dict[str, int]] = {}

        def used(rec: dict[str, Any]) -> None:
            t = tokens.setdefault(rec["role"], {"prompt_tokens": 0, "completion_tokens": 0, "calls": 0})
            t["prompt_tokens"] += int(rec.get("prompt_tokens", 0))
            t["completion_tokens"] += int(rec.get("completion_tokens", 0))
            t["calls"] += 1

        def out(status: str, reason: str = "", **kw: Any) -> Outcome:
            return Outcome(
                sample.sample_id, sample.row, status, reason, steps_done=tuple(done), tokens=tokens, source_id=sample.source_id, **kw
            )

        try:
            return await self._process(sample, done, used, out)
        except StepFailed as exc:
            await self._record_failure(sample, exc)
            return out(FAILED, f"{exc.step}:{exc.reason}", failure_key=exc.key)
        except Stopping:
            return out(INTERRUPTED, "stopped")

    async def _record_failure(self, sample: Sample, exc: StepFailed) -> None:
        key = exc.key
        if not key:
            return
        existing = self.failures.get(key)
        if existing is not None and self._skip_failure(existing):
            return  # replayed from the failure log, nothing new to write
        await asyncio.to_thread(
            self.failures.append,
            {
                "key": key,
                "sample_id": sample.sample_id,
                "row": sample.row,
                "source_id": sample.source_id,
                "step": exc.step,
                "reason": exc.reason,
                "detail": exc.detail,
                "transient": exc.transient,
                "time": round(time.time(), 3),
            },
        )

    async def _process(self, sample: Sample, done: list[str], used: Callable, out: Callable) -> Outcome:
        cfg = self.cfg
        urls: list[str] | None = None

        def image_urls() -> list[str]:
            nonlocal urls
            if urls is None:
                urls = self._image_urls(sample)
            return urls

        # 1. attempt (policy), or the attempt of released SFT data
        if sample.given_attempt:
            k_att = step_key(sample.sample_id, "attempt", {"given": True}, prompts=())
            att = {"content": sample.given_attempt, "finish_reason": "stop"}
        else:
            k_att = step_key(sample.sample_id, "attempt", cfg.policy.fingerprint())
            att = await self._call(sample, "attempt", "policy", k_att, lambda: attempt_messages(sample.question, image_urls()))
            done.append("attempt")
            used(att)
        if att["finish_reason"] == "length":
            return out(DROPPED, "attempt_truncated")
        if att["finish_reason"] != "stop":
            return out(DROPPED, f"attempt_finish_{att['finish_reason']}")
        first = parse_two_blocks(att["content"], "first")
        if not first.ok:
            return out(DROPPED, f"attempt_format:{first.reason}")

        # 2. grade the first answer with the reward's own grader
        g1 = await self._grade(first.answer, sample.ground_truth)
        if g1.status == "gold_unparsable":
            return out(DROPPED, "gold_unparsable")
        if g1.status in ("timeout", "error"):
            return out(DROPPED, f"grade1_{g1.status}")
        first_correct = bool(g1.correct)
        attempt_text = f"<think>{first.think}</think> <answer>{first.answer_block}</answer>"

        # 2b. the judge's score of the attempt's reasoning (optional), JSON {"score": n}
        judge_score: float | None = None
        if cfg.judge is not None:
            judge_score = await self._judge(sample, k_att, attempt_text, image_urls, used)
            done.append("judge")
            if judge_score < cfg.judge_threshold:
                return out(DROPPED, "judge_below_threshold", first_correct=first_correct, judge_score=judge_score)

        # 3. reflection (teacher), JSON {"reflection": ...}; a malformed reply is asked again
        if sample.given_reflection:
            reflection = sample.given_reflection
            k_ref = step_key(sample.sample_id, "reflection", {"given": True}, upstream=k_att, prompts=())
        else:
            fp = cfg.teacher.fingerprint()

            def parse(rec: dict[str, Any]) -> tuple[str | None, str]:
                text, why = parse_reflection(rec["content"])
                if rec["finish_reason"] != "stop" and text is None:
                    why = f"finish_{rec['finish_reason']}"
                return text, why

            reflection, k_ref = await self._until_parsed(
                sample,
                "reflection",
                "teacher",
                lambda i: step_key(sample.sample_id, "reflection", fp, upstream=k_att, try_index=i),
                lambda: reflection_messages(
                    sample.question, image_urls(), attempt_text, first.answer, sample.ground_truth, first_correct
                ),
                parse,
                used,
                "teacher_bad_json",
            )
            done.append("reflection")

        # 4. revised attempt (policy or teacher)
        role = cfg.revise_with
        endpoint = cfg.policy if role == "policy" else cfg.teacher
        k_rev = step_key(sample.sample_id, "revision", endpoint.fingerprint(), upstream=k_ref + "|" + role)
        rev = await self._call(
            sample, "revision", role, k_rev, lambda: revise_messages(sample.question, image_urls(), attempt_text, reflection)
        )
        done.append("revision")
        used(rev)
        if rev["finish_reason"] == "length":
            return out(DROPPED, "revision_truncated", first_correct=first_correct, judge_score=judge_score)
        if rev["finish_reason"] != "stop":
            return out(DROPPED, f"revision_finish_{rev['finish_reason']}", first_correct=first_correct, judge_score=judge_score)
        second = parse_two_blocks(rev["content"], "second")
        if not second.ok:
            return out(DROPPED, f"revision_format:{second.reason}", first_correct=first_correct, judge_score=judge_score)

        # 5. filter: the reward's format check, a correct final answer, no leaked ground truth
        from srpo_reward.format import parse_response

        assert first.think and first.answer_block and second.think and second.answer_block
        target = build_target(first.think, first.answer_block, reflection, second.think, second.answer_block)
        parsed = parse_response(target)
        if not parsed.ok:
            return out(DROPPED, f"target_format:{parsed.reason}", first_correct=first_correct, judge_score=judge_score)
        g2 = await self._grade(parsed.final_answer, sample.ground_truth)
        if g2.status in ("timeout", "error"):
            return out(DROPPED, f"grade2_{g2.status}", first_correct=first_correct, judge_score=judge_score)
        if not g2.correct:
            return out(DROPPED, "final_wrong", first_correct=first_correct, judge_score=judge_score)
        if quotes_ground_truth(reflection, sample.ground_truth):
            return out(DROPPED, "reflection_quotes_ground_truth", first_correct=first_correct, judge_score=judge_score)
        return out(KEPT, "", first_correct=first_correct, target=target, judge_score=judge_score)

    async def _judge(
        self, sample: Sample, k_att: str, attempt_text: str, image_urls: Callable[[], list[str]], used: Callable
    ) -> float:
        """The judge's score, stored like every call; a reply that is not JSON is asked again
        with a corrective turn (``json_retries``), then the sample fails (``judge_bad_json``)."""
        assert self.cfg.judge is not None
        fp = self.cfg.judge.fingerprint()
        score, _ = await self._until_parsed(
            sample,
            "judge",
            "judge",
            lambda i: step_key(sample.sample_id, "judge", fp, upstream=k_att, try_index=i),
            lambda: judge_messages(sample.question, image_urls(), attempt_text, sample.ground_truth),
            lambda rec: parse_judge_score(rec["content"]),
            used,
            "judge_bad_json",
        )
        return score

    # ------------------------------------------------------------------ the whole run
    async def _wait_while_breaker_open(self, result: "RunResult", in_flight: set[Any]) -> None:
        """Admit no new sample while an endpoint's circuit breaker is tripped (an outage),
        except one as a probe when no sample is in flight (see :class:`CircuitBreaker`)."""
        assert self.stop is not None
        start = time.monotonic()
        waited = False
        while not self.stop.is_set():
            tripped = [c.breaker for c in self.clients.values() if c.breaker.tripped]
            if not tripped or (not in_flight and not any(b.is_open for b in tripped)):
                break
            if not waited:
                tqdm.write("most calls fail: pausing new samples until the endpoint recovers (circuit breaker)")
                waited = True
            await asyncio.sleep(0.05)
        result.paused_seconds += time.monotonic() - start if waited else 0.0

    def _compact_failures(self, result: "RunResult") -> None:
        """Rewrite failures.jsonl as the current failures, one line per failed sample.

        A sample that succeeded or was dropped this run loses its line; a sample that failed
        again keeps only its latest line; a sample this run did not reach keeps its line."""
        path = self.failures.path
        keep: dict[str, dict[str, Any]] = {}
        for key, rec in self.failures.records.items():
            o = result.outcomes.get(str(rec.get("sample_id")))
            if o is None or (o.status == FAILED and o.failure_key == key):
                keep[key] = rec
        if not path.exists():
            return
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("wb") as fh:
            for rec in sorted(keep.values(), key=lambda r: (int(r.get("row", 0)), str(r.get("key")))):
                fh.write((json.dumps(rec, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    async def run(self, samples: Iterable[Sample | BadRow], total: int | None = None) -> "RunResult":
        cfg = self.cfg
        self.stop = asyncio.Event()
        self.clients = {"policy": EndpointClient("policy", cfg.policy), "teacher": EndpointClient("teacher", cfg.teacher)}
        if cfg.judge is not None:
            self.clients["judge"] = EndpointClient("judge", cfg.judge)
        result = RunResult(outcomes=OutcomeTable(cfg.out / OUTCOMES_DB))
        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task[Outcome]] = set()
        sigints = 0

        def on_sigint() -> None:
            nonlocal sigints
            sigints += 1
            assert self.stop is not None
            self.stop.set()
            if sigints == 1:
                tqdm.write("Ctrl-C: finishing the calls in flight and flushing (Ctrl-C again to abort them)")
            else:
                for t in list(tasks):
                    t.cancel()

        try:
            loop.add_signal_handler(signal.SIGINT, on_sigint)
            installed = True
        except (NotImplementedError, RuntimeError):
            installed = False

        bar = tqdm(total=total, unit="sample", disable=not cfg.progress, dynamic_ncols=True, smoothing=0.05)
        slots = asyncio.Semaphore(cfg.in_flight())

        def finished(task: asyncio.Task[Outcome]) -> None:
            tasks.discard(task)
            slots.release()
            if task.cancelled():
                result.interrupted += 1
            else:
                exc = task.exception()
                if exc is not None:
                    result.errors.append(repr(exc))
                else:
                    result.add(task.result())
            bar.update(1)
            bar.set_postfix(kept=result.kept, dropped=sum(result.dropped.values()), failed=sum(result.failed.values()), refresh=False)

        try:
            for item in samples:
                if self.stop.is_set():
                    break
                result.samples_in += 1
                if isinstance(item, BadRow):
                    result.bad_input[item.reason] += 1
                    bar.update(1)
                    continue
                if not result.outcomes.mark("admitted", item.sample_id):
                    result.duplicates += 1
                    bar.update(1)
                    continue
                await slots.acquire()
                await self._wait_while_breaker_open(result, tasks)
                if self.stop.is_set():
                    slots.release()
                    break
                task = asyncio.create_task(self.process(item))
                tasks.add(task)
                task.add_done_callback(finished)
            if tasks:
                await asyncio.wait(set(tasks))
            # let the done callbacks run
            await asyncio.sleep(0)
        finally:
            bar.close()
            if installed:
                loop.remove_signal_handler(signal.SIGINT)
            for name, client in self.clients.items():
                result.usage[name] = client.usage.as_dict()
                await client.aclose()
            self.store.close()
            self.failures.close()
            await asyncio.to_thread(self._compact_failures, result)
        result.stopped = self.stop.is_set()
        result.fatal = str(self.fatal) if self.fatal else None
        return result


#: This run's outcome per sample (rewritten by every run; the step store is the lasting record).
OUTCOMES_DB = "outcomes.sqlite"
_OUTCOME_FIELDS = ("sample_id", "row", "status", "reason", "first_correct", "target", "failure_key", "source_id", "judge_score")


class OutcomeTable:
    """The outcomes of one run, keyed by sample id, in SQLite (a file, or memory when
    ``path`` is None): a run of 100K samples does not hold 100K targets in memory.  Reads
    return :class:`Outcome` objects without their token counts (those are summed on arrival)."""

    def __init__(self, path: Path | None = None):
        import sqlite3

        if path is not None:
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
        self._db = sqlite3.connect(":memory:" if path is None else str(path), check_same_thread=False)
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute(
            "CREATE TABLE o (sample_id TEXT PRIMARY KEY, row INTEGER, status TEXT, reason TEXT, first_correct INTEGER,"
            " target TEXT, failure_key TEXT, source_id TEXT, judge_score REAL)"
        )
        self._db.execute("CREATE TABLE marks (name TEXT, sample_id TEXT, PRIMARY KEY (name, sample_id)) WITHOUT ROWID")

    def mark(self, name: str, sample_id: str) -> bool:
        """True the first time ``(name, sample_id)`` is marked (a set that lives on disk)."""
        return self._db.execute("INSERT OR IGNORE INTO marks VALUES (?, ?)", (name, sample_id)).rowcount == 1

    @staticmethod
    def _to_outcome(row: tuple[Any, ...]) -> Outcome:
        d = dict(zip(_OUTCOME_FIELDS, row, strict=True))
        if d["first_correct"] is not None:
            d["first_correct"] = bool(d["first_correct"])
        return Outcome(**d)

    def __setitem__(self, sample_id: str, o: Outcome) -> None:
        values = [getattr(o, f) for f in _OUTCOME_FIELDS]
        self._db.execute(f"INSERT OR REPLACE INTO o VALUES ({','.join('?' * len(values))})", values)

    def get(self, sample_id: str) -> Outcome | None:
        row = self._db.execute(f"SELECT {','.join(_OUTCOME_FIELDS)} FROM o WHERE sample_id=?", (sample_id,)).fetchone()
        return None if row is None else self._to_outcome(row)

    def __getitem__(self, sample_id: str) -> Outcome:
        o = self.get(sample_id)
        if o is None:
            raise KeyError(sample_id)
        return o

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM o").fetchone()[0])

    def kept_ids(self, first_correct: bool) -> list[str]:
        rows = self._db.execute("SELECT sample_id FROM o WHERE status=? AND first_correct=? ORDER BY sample_id", (KEPT, int(first_correct)))
        return [r[0] for r in rows]

    def items(self) -> Iterator[tuple[str, Outcome]]:
        for row in self._db.execute(f"SELECT {','.join(_OUTCOME_FIELDS)} FROM o ORDER BY sample_id").fetchall():
            o = self._to_outcome(row)
            yield o.sample_id, o

    def values(self) -> Iterator[Outcome]:
        for _, o in self.items():
            yield o


def mix_counts(n_right: int, n_wrong: int, target_first_right: float) -> tuple[int, int]:
    """How many first-right and first-wrong samples the mix keeps, in whole samples.

    Every sample of the under-represented side is kept; of the other side, the count whose
    share ``right / (right + wrong)`` is closest to the target (a tie keeps more samples).
    So a side is emptied only when that is the closest split: 2 right and 1 wrong at 30%
    keep 1 and 1 (50%, not 0%), 5 and 5 at 100% keep 5 and 0.

    >>> mix_counts(2, 1, 0.3), mix_counts(50, 50, 0.3), mix_counts(10, 90, 0.3)
    ((1, 1), (21, 50), (10, 23))
    """
    t = target_first_right
    if n_right * (1 - t) > t * n_wrong:  # too many first-right: keep every wrong one
        k = min(range(n_right + 1), key=lambda r: (abs(r / (r + n_wrong) - t) if r + n_wrong else 1.0, -r))
        return k, n_wrong
    k = min(range(n_wrong + 1), key=lambda w: (abs(n_right / (n_right + w) - t) if n_right + w else 1.0, -w))
    return n_right, k


@dataclass
class RunResult:
    samples_in: int = 0
    duplicates: int = 0
    bad_input: Counter[str] = field(default_factory=Counter)
    outcomes: OutcomeTable = field(default_factory=OutcomeTable)
    kept: int = 0
    kept_first_right: int = 0
    kept_first_wrong: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    interrupted: int = 0
    attempts: int = 0
    reflections: int = 0
    revisions: int = 0
    tokens: dict[str, dict[str, int]] = field(default_factory=dict)
    usage: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    stopped: bool = False
    fatal: str | None = None
    #: Seconds new samples waited for an open circuit breaker.
    paused_seconds: float = 0.0
    #: Samples the judge scored, and how many of them reached the threshold.
    judged: int = 0
    judge_kept: int = 0

    def add(self, o: Outcome) -> None:
        for role, t in o.tokens.items():
            acc = self.tokens.setdefault(role, {"prompt_tokens": 0, "completion_tokens": 0, "calls": 0})
            for k, v in t.items():
                acc[k] += v
        self.attempts += "attempt" in o.steps_done
        self.reflections += "reflection" in o.steps_done
        self.revisions += "revision" in o.steps_done
        if o.judge_score is not None:
            self.judged += 1
            self.judge_kept += o.reason != "judge_below_threshold"
        if o.status == INTERRUPTED:
            self.interrupted += 1
            return
        self.outcomes[o.sample_id] = o
        if o.status == KEPT:
            self.kept += 1
            if o.first_correct:
                self.kept_first_right += 1
            else:
                self.kept_first_wrong += 1
        elif o.status == DROPPED:
            self.dropped[o.reason] += 1
        elif o.status == FAILED:
            self.failed[o.reason] += 1

    def apply_mix(self, target_first_right: float, seed: int = 0) -> None:
        """Drop the surplus of the over-represented side of the kept samples (``mix_balance``)
        so that first-right samples make ``target_first_right`` of the kept ones, as closely as
        whole samples allow.  Which samples go is a hash of their id and ``seed``: the same
        choice on every run, whatever the order they finished in."""
        import hashlib

        right = self.outcomes.kept_ids(True)
        wrong = self.outcomes.kept_ids(False)
        if not right or not wrong:
            return  # one side is empty: no mix can be met, and dropping everything helps nobody
        keep_right, keep_wrong = mix_counts(len(right), len(wrong), target_first_right)

        def rank(sid: str) -> str:
            return hashlib.sha256(f"{seed}:{sid}".encode()).hexdigest()

        for ids, keep in ((right, keep_right), (wrong, keep_wrong)):
            for sid in sorted(ids, key=rank)[keep:]:
                o = self.outcomes[sid]
                o.status, o.reason, o.target = DROPPED, "mix_balance", None
                self.outcomes[sid] = o
                self.kept -= 1
                if o.first_correct:
                    self.kept_first_right -= 1
                else:
                    self.kept_first_wrong -= 1
                self.dropped["mix_balance"] += 1

    @property
    def complete(self) -> bool:
        return not self.stopped and self.interrupted == 0 and not self.errors and self.fatal is None
