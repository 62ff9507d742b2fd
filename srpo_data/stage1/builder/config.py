"""Configuration of the stage-1 reflection builder: one endpoint object per model, one run object.

An endpoint is any OpenAI-compatible chat endpoint (vLLM ``serve``, OpenAI, Azure's
OpenAI-compatible route).  The API key is never part of the configuration: only the *name*
of the environment variable that holds it (``api_key_env``) is, so a config file or a log
line can be shared without leaking it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

#: Fields of :class:`EndpointConfig` that change what the endpoint answers.  Only these enter the
#: cache key of a stored call: changing the timeout, the retry budget, the concurrency or the key
#: must not invalidate results already paid for.
RESULT_FIELDS = ("base_url", "model", "temperature", "top_p", "max_tokens", "seed", "extra_body")


class EndpointConfig(BaseModel):
    """One OpenAI-compatible chat endpoint and how to sample from it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Base URL of the OpenAI-compatible API, e.g. ``http://localhost:8000/v1``.
    base_url: str
    #: Model name sent in each request (vLLM: the served model name).
    model: str
    #: NAME of the environment variable that holds the API key; None sends a placeholder key
    #: (fine for a local vLLM server started without ``--api-key``).
    api_key_env: str | None = None
    #: Seconds before one HTTP request is abandoned (and retried).
    timeout: float = Field(default=120.0, gt=0)
    #: Retries after the first try on 429, 5xx, timeouts, connection errors and bad bodies.
    max_retries: int = Field(default=6, ge=0)
    #: Upper bound, in seconds, of one exponential-backoff wait (a server's Retry-After wins
    #: up to ``max_retry_after``).
    backoff_max: float = Field(default=60.0, gt=0)
    #: First backoff wait, in seconds (doubles on each retry, plus random jitter).
    backoff_initial: float = Field(default=1.0, gt=0)
    #: Longest Retry-After we honour, in seconds; a longer one counts as this long.
    max_retry_after: float = Field(default=300.0, gt=0)
    #: Circuit breaker: when at least ``breaker_threshold`` of the last ``breaker_window`` HTTP
    #: tries failed transiently, no try is sent and no new sample admitted for
    #: ``breaker_cooldown`` seconds (doubling while the outage lasts).
    breaker_window: int = Field(default=20, ge=1)
    breaker_threshold: float = Field(default=0.8, gt=0, le=1)
    breaker_cooldown: float = Field(default=10.0, gt=0)
    #: Requests in flight at once against this endpoint.
    concurrency: int = Field(default=16, ge=1)
    #: Sampling temperature (None: not sent, e.g. for OpenAI o-series models).
    temperature: float | None = Field(default=0.7, ge=0)
    #: Nucleus sampling (None: not sent).
    top_p: float | None = Field(default=1.0, gt=0, le=1)
    #: Most tokens to generate per call (None lets the server decide).
    max_tokens: int | None = Field(default=2048, ge=1)
    #: Sampling seed, if the server supports one.
    seed: int | None = None
    #: Extra JSON fields merged into each request body (e.g. ``{"top_k": 20}`` for vLLM,
    #: ``{"response_format": {"type": "json_object"}}`` for a teacher).
    extra_body: dict[str, Any] = Field(default_factory=dict)

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {v!r}")
        return v.rstrip("/")

    @field_validator("api_key_env")
    @classmethod
    def _check_env_name(cls, v: str | None) -> str | None:
        if v is not None and (not v or not v.replace("_", "a").isalnum()):
            raise ValueError(
                "api_key_env is the NAME of an environment variable (letters, digits, underscores), "
                "not the key itself"
            )
        return v

    def api_key(self) -> str:
        """The key, read from the environment at call time (never stored on the object)."""
        if self.api_key_env is None:
            return "EMPTY"
        value = os.environ.get(self.api_key_env)
        if not value:
            raise ConfigError(f"environment variable {self.api_key_env} (api_key_env) is not set or empty")
        return value

    def fingerprint(self) -> dict[str, Any]:
        """The fields that change an answer (see :data:`RESULT_FIELDS`); no secret, no timing."""
        return {name: getattr(self, name) for name in RESULT_FIELDS}


class ConfigError(ValueError):
    """A configuration the run cannot start with."""


Reviser = Literal["policy", "teacher"]


class BuildConfig(BaseModel):
    """Everything a run of ``python -m srpo_data.build_reflections`` needs."""

    model_config = ConfigDict(extra="forbid")

    #: RL parquet written by ``python -m srpo_data.prepare_rl`` (verl RL schema), or JSONL.
    input: Path
    #: Output folder (store, failures, parquet, sharegpt JSON, summary).
    out: Path
    #: The model being trained: makes the first attempt (and the revision when revise_with=policy).
    policy: EndpointConfig
    #: The stronger model that writes the reflection (and the revision when revise_with=teacher).
    teacher: EndpointConfig
    #: Optional judge model (the paper: DeepSeek-V3) that scores the reasoning quality of each
    #: first attempt before the teacher writes a reflection; its prompt is
    #: ``prompts/judge.txt`` and it returns JSON ``{"score": 1-10}``.
    judge: EndpointConfig | None = None
    #: Lowest judge score that keeps a sample (the paper keeps about 10K of 100K).
    judge_threshold: float = Field(default=6.0, ge=0)
    #: Target share of first-right samples among the kept ones (the paper: about 0.3).  The
    #: surplus of the over-represented side is dropped (``mix_balance``), chosen by a hash of
    #: the sample id and ``mix_seed``: the same choice on every run.  None keeps every sample.
    target_first_right: float | None = Field(default=None, ge=0, le=1)
    mix_seed: int = 0
    #: Who writes the revised attempt T2/A2 after the reflection.
    revise_with: Reviser = "policy"
    #: JSONL input only: folder that relative image paths are resolved against (default: the
    #: JSONL file's folder).
    image_dir: Path | None = None
    #: JSONL input only: field names.
    question_key: str = "question"
    answer_key: str = "answer"
    image_key: str = "images"
    id_key: str = "id"
    #: When set, images are sent as ``image_url_prefix + relative path`` instead of base64 data
    #: URLs (JSONL input only: the prefix must serve ``image_dir``).
    image_url_prefix: str | None = None
    #: ``auto``: verl RL parquet or JSONL by the file's suffix; or a public stage-1 release in its
    #: published layout (``srpo_data/stage1/sources.py``), images under ``image_dir``.
    input_format: Literal["auto", "mulberry", "llava_cot", "mathv360k", "srpo_sft"] = "auto"
    #: Releases only: a deterministic sample of N records (the paper samples 100K).
    sample: int | None = Field(default=None, ge=1)
    #: Seed of ``sample`` (another seed, another sample).
    sample_seed: int = 0
    #: Process only the first N input rows.
    limit: int | None = Field(default=None, ge=1)
    #: Extra tries when the teacher's reflection is not valid JSON ``{"reflection": "..."}``.
    json_retries: int = Field(default=2, ge=0)
    #: Retry samples recorded in failures.jsonl (otherwise they are skipped and counted).
    retry_failed: bool = False
    #: Samples worked on at once (default: 2 x (policy + teacher concurrency)).
    max_in_flight: int | None = Field(default=None, ge=1)
    #: Name of the dataset in LLaMA-Factory's dataset_info.json.
    dataset_name: str = "srpo_reflection_sft"
    #: Seconds one grading of an answer may take.
    grade_timeout: float = Field(default=5.0, gt=0)
    #: Show the tqdm bar.
    progress: bool = True

    def in_flight(self) -> int:
        if self.max_in_flight is not None:
            return self.max_in_flight
        judge = self.judge.concurrency if self.judge is not None else 0
        return 2 * (self.policy.concurrency + self.teacher.concurrency + judge)


def load_mapping(value: str | Path) -> dict[str, Any]:
    """A YAML file path, or an inline YAML/JSON mapping such as ``'{base_url: ..., model: m}'``."""
    text = str(value)
    path = Path(text)
    if path.suffix in (".yaml", ".yml", ".json") or path.is_file():
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"not a file and not an inline YAML mapping: {text!r} ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping from {text!r}, got {type(data).__name__}")
    return data


def stable_hash(obj: Any) -> str:
    """sha256 of a canonical JSON dump (sorted keys, no whitespace variance)."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()
