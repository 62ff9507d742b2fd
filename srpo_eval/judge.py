"""Answer extraction by an OpenAI-compatible judge, for responses without a usable ``<answer>``.

The paper extracts answers with GPT-4o, as MathVista's and MathVerse's official scorers
do with GPT models.  Here the judge only *extracts* (the prompt is
``srpo_eval/prompts/judge_extract.txt``); grading stays with the official rules
(:mod:`srpo_eval.official`).  It is asked only about responses with no ``<answer>``
block with content (a base model, a published peer's format); the rule path alone is
the offline default.

The endpoint is described exactly as the stage-1 builder's endpoints
(:class:`srpo_data.stage1.builder.config.EndpointConfig`: ``base_url``, ``model``,
``api_key_env`` (the NAME of the variable holding the key), timeout, retries,
concurrency ...), read from a YAML file (the mapping itself, or under a ``judge:``
key), and called with the builder's client (:class:`srpo_data.stage1.builder.client.EndpointClient`:
bounded concurrency, backoff, Retry-After, fatal 401/403/404).  Replies are stored in an
append-only JSONL cache (:class:`srpo_data.stage1.builder.store.JsonlStore`, fsynced per line)
keyed by the endpoint's result fields, the prompt and the response, so a killed run
resumes without asking again, and a changed prompt or model asks again.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from srpo_eval.data import DataItem, DataSet
from srpo_eval.rollouts import Rollout

#: The judge's counts of one run, each written to ``summary.json`` (0 included): responses that needed
#: it, replies read from the cache, calls made, answers extracted, replies that gave no answer.
JUDGE_COUNTERS = ("needed", "cached", "asked", "decided", "no_answer")


class JudgeError(RuntimeError):
    """The judge endpoint refuses every call (bad key, model or URL)."""


PROMPT_FILE = Path(__file__).parent / "prompts" / "judge_extract.txt"
#: What the judge answers when the response has no final answer.
NO_ANSWER = "NONE"
#: Characters of a response shown to the judge (its end: the final answer is there).
MAX_RESPONSE_CHARS = 12_000


def load_judge_config(path: str | Path):
    """The judge's :class:`EndpointConfig` from a YAML file (a mapping, or one under ``judge:``)."""
    from srpo_data.stage1.builder.config import EndpointConfig, load_mapping

    mapping = load_mapping(path)
    if isinstance(mapping.get("judge"), Mapping):
        mapping = dict(mapping["judge"])
    return EndpointConfig(**mapping)


def render_prompt(template: str, item: DataItem, response: str) -> str:
    question = str(item.extra_info.get("question") or item.prompt_text).replace("<image>", "").strip()
    if item.options and "Choices" not in question:
        question += "\nChoices:\n" + "\n".join(f"({chr(65 + i)}) {o}" for i, o in enumerate(item.options))
    tail = response[-MAX_RESPONSE_CHARS:]
    return template.replace("{question}", question).replace("{response}", tail)


def parse_reply(text: str) -> str | None:
    """The extracted answer of a reply (``Extracted answer: B`` -> ``B``); None for NONE or nothing."""
    s = text.strip()
    low = s.lower()
    at = low.rfind("extracted answer:")
    if at >= 0:
        s = s[at + len("extracted answer:") :]
    s = s.strip().splitlines()[0].strip() if s.strip() else ""
    s = s.strip().strip('"').strip("'").strip()
    if not s or s.upper().rstrip(".") == NO_ANSWER:
        return None
    return s


def needs_judge(rollout: Rollout) -> bool:
    """A usable rollout whose response has no ``<answer>`` with content."""
    from srpo_eval.scoring import usable_answer

    return not rollout.error and rollout.id is not None and rollout.response is not None and usable_answer(rollout.response) is None


@dataclass
class Judge:
    """Extracts answers with one endpoint, through the append-only cache at ``cache_path``.

    ``stats`` counts the last :meth:`extract_all` call only (one run of the report): a judge
    that serves several runs reports each run's own counts in :meth:`describe`."""

    cfg: Any
    cache_path: Path
    prompt_path: Path = PROMPT_FILE
    stats: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.cache_path = Path(self.cache_path)
        self.template = Path(self.prompt_path).read_text(encoding="utf-8")
        self.prompt_sha = hashlib.sha256(self.template.encode("utf-8")).hexdigest()[:16]

    def key(self, item: DataItem, response: str) -> str:
        from srpo_data.stage1.builder.config import stable_hash

        return stable_hash({"endpoint": self.cfg.fingerprint(), "prompt": self.prompt_sha, "id": item.id, "response": response})

    def extract_all(self, rollouts: Sequence[Rollout], data: DataSet) -> dict[tuple[str, int], str]:
        """(id, sample) -> extracted answer, for every rollout that needs the judge and got one."""
        from srpo_data.stage1.builder.store import JsonlStore

        self.stats = Counter()  # this run's counts, not the totals of every run so far
        todo = [r for r in rollouts if needs_judge(r) and r.id in data.items]
        store = JsonlStore(self.cache_path)
        try:
            out: dict[tuple[str, int], str] = {}
            missing: dict[str, tuple[DataItem, str]] = {}
            keys = {}
            for r in todo:
                item = data.items[r.id]
                k = self.key(item, r.response)
                keys[(r.id, r.sample)] = k
                if k in store:
                    self.stats["cached"] += 1
                else:
                    missing.setdefault(k, (item, r.response))
            if missing:
                from srpo_data.stage1.builder.client import FatalEndpointError

                try:
                    asyncio.run(self._ask_all(missing, store))
                except FatalEndpointError as e:
                    raise JudgeError(f"the judge endpoint refused the call ({e}); answers cached so far are kept") from e
            for (qid, sample), k in keys.items():
                rec = store.get(k)
                if rec is not None and rec.get("answer"):
                    out[(qid, sample)] = rec["answer"]
                    self.stats["decided"] += 1
                elif rec is not None:
                    self.stats["no_answer"] += 1
            self.stats["needed"] += len(keys)
            return out
        finally:
            store.close()

    async def _ask_all(self, missing: Mapping[str, tuple[DataItem, str]], store) -> None:
        from srpo_data.stage1.builder.client import EndpointClient, EndpointError, FatalEndpointError

        client = EndpointClient("judge", self.cfg)
        try:
            async def one(k: str, item: DataItem, response: str) -> None:
                messages = [{"role": "user", "content": render_prompt(self.template, item, response)}]
                try:
                    result = await client.chat(messages)
                except FatalEndpointError:
                    raise
                except EndpointError as e:
                    self.stats[f"failed:{e.reason}"] += 1  # not cached: asked again on the next run
                    return
                if result.finish_reason == "length":
                    self.stats["failed:length"] += 1
                    return
                self.stats["asked"] += 1
                record = {"key": k, "id": item.id, "answer": parse_reply(result.content), "reply": result.content,
                          "model": self.cfg.model, "prompt_sha": self.prompt_sha}
                await asyncio.to_thread(store.append, record)

            await asyncio.gather(*(one(k, it, resp) for k, (it, resp) in missing.items()))
        finally:
            await client.aclose()

    def describe(self) -> dict[str, Any]:
        """The endpoint and this run's counts: every counter of :data:`JUDGE_COUNTERS` (0 when nothing
        counted it), ``failed`` (all failures) and one ``failed:<reason>`` per reason met."""
        failures = {k: v for k, v in sorted(self.stats.items()) if k.startswith("failed:")}
        return {
            "model": self.cfg.model,
            "base_url": self.cfg.base_url,
            "prompt_file": str(self.prompt_path),
            "cache": str(self.cache_path),
            **{k: int(self.stats.get(k, 0)) for k in JUDGE_COUNTERS},
            "failed": sum(failures.values()),
            **failures,
        }
