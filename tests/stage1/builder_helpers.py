"""Helpers of the builder tests: a generated question set and loopback endpoint configs."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from srpo_data.stage1.builder.config import BuildConfig, EndpointConfig


def make_question_set(root: Path, n: int) -> tuple[Path, dict[str, str]]:
    """``root/in.jsonl`` with n questions (a 28x28 PNG each, distinct colours) and the answer key.

    Ground truths alternate between option letters and integers; each question carries a
    ``[q:ID]`` tag that the scripted server uses to look its answer up.
    """
    root.mkdir(parents=True, exist_ok=True)
    answers: dict[str, str] = {}
    with (root / "in.jsonl").open("w", encoding="utf-8") as fh:
        for i in range(n):
            Image.new("RGB", (28, 28), (i * 37 % 256, i * 91 % 256, 60)).save(root / f"img{i}.png")
            gt = "ABCDE"[i % 5] if i % 2 else str(10 + i)
            answers[f"s{i}"] = gt
            rec = {"id": f"row{i}", "question": f"[q:s{i}] Which value does figure {i} show?", "answer": gt, "images": [f"img{i}.png"]}
            fh.write(json.dumps(rec) + "\n")
    return root / "in.jsonl", answers


def endpoint(url: str, **kw: object) -> EndpointConfig:
    """Fast-retry settings for loopback servers."""
    base: dict[str, object] = dict(
        base_url=url, model="fake", timeout=1.0, max_retries=8, backoff_initial=0.02, backoff_max=0.2, concurrency=8
    )
    base.update(kw)
    return EndpointConfig(**base)  # type: ignore[arg-type]


def build_config(inp: Path, out: Path, url: str, **kw: object) -> BuildConfig:
    ep_kw = kw.pop("endpoint", {})
    assert isinstance(ep_kw, dict)
    return BuildConfig(input=inp, out=out, policy=endpoint(url, **ep_kw), teacher=endpoint(url, **ep_kw), progress=False, **kw)  # type: ignore[arg-type]
