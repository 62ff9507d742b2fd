"""Small generated look-alikes of each RL source layout (images made with PIL), and a verl loader."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

from PIL import Image

# (width, height) of the generated images; token counts differ per size.
SIZES = [(100, 80), (448, 448), (300, 200), (56, 560)]


def png_bytes(size: tuple[int, int], color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def jpeg_bytes(size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 120, 240)).save(buf, format="JPEG")
    return buf.getvalue()


def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A PNG whose header claims width x height pixels (no real pixel data)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


def write_image(path: Path, size: tuple[int, int]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(size))
    return path


def _hf_dataset(columns: dict, features: dict):
    import datasets

    return datasets.Dataset.from_dict(columns, features=datasets.Features(features))


def make_geometry3k(root: Path) -> Path:
    """HF hub snapshot layout: data/{train,test}-00000-of-00001.parquet."""
    import datasets

    feats = {
        "images": datasets.List(datasets.Image()),
        "problem": datasets.Value("string"),
        "answer": datasets.Value("string"),
    }
    train = _hf_dataset(
        {
            "images": [[{"bytes": png_bytes(s), "path": None}] for s in SIZES[:3]],
            "problem": ["<image>Find x.", "<image>Find the area of the circle.", "<image>Find y. Round to the nearest tenth."],
            "answer": ["3", "4\\sqrt{2}", "12.5"],
        },
        feats,
    )
    test = _hf_dataset(
        {"images": [[{"bytes": png_bytes(SIZES[3]), "path": None}]], "problem": ["<image>Find z."], "answer": ["7"]},
        feats,
    )
    (root / "data").mkdir(parents=True)
    train.to_parquet(str(root / "data" / "train-00000-of-00001.parquet"))
    test.to_parquet(str(root / "data" / "test-00000-of-00001.parquet"))
    return root


def make_geometry3k_disk(root: Path) -> Path:
    """``DatasetDict.save_to_disk`` layout of the same data."""
    import datasets

    feats = {
        "images": datasets.List(datasets.Image()),
        "problem": datasets.Value("string"),
        "answer": datasets.Value("string"),
    }
    dd = datasets.DatasetDict(
        {
            "train": _hf_dataset(
                {"images": [[{"bytes": png_bytes(SIZES[0]), "path": None}]], "problem": ["<image>Find x."], "answer": ["3"]},
                feats,
            ),
            "test": _hf_dataset(
                {"images": [[{"bytes": jpeg_bytes(SIZES[2]), "path": None}]], "problem": ["<image>Find y."], "answer": ["5"]},
                feats,
            ),
        }
    )
    dd.save_to_disk(str(root))
    return root


def make_mmk12(root: Path) -> Path:
    import datasets

    feats = {
        "id": datasets.Value("string"),
        "subject": datasets.Value("string"),
        "image": datasets.Image(),
        "question": datasets.Value("string"),
        "answer": datasets.Value("string"),
    }
    ds = _hf_dataset(
        {
            "id": ["math_1", "physics_2"],
            "subject": ["math", "physics"],
            "image": [{"bytes": png_bytes(SIZES[0]), "path": None}, {"bytes": jpeg_bytes(SIZES[1]), "path": None}],
            "question": ["What is the slope of the line?", "Which force is larger?\nA. F1\nB. F2"],
            "answer": ["\\boxed{2}", "B"],
        },
        feats,
    )
    root.mkdir(parents=True)
    out = root / "train-00000-of-00001.parquet"
    ds.to_parquet(str(out))
    return out


def make_srpo(root: Path) -> Path:
    """MM-Eureka style JSONL: ``message`` is a JSON string with file:// image paths."""
    rows = []
    for i, size in enumerate(SIZES[:3]):
        image = write_image(root / "images" / f"q{i}.png", size)
        message = [
            {"role": "system", "content": "You are a helpful assistant."},
            {
                "role": "user",
                "content": [{"type": "image", "image": f"file://{image}"}, {"type": "text", "text": f"What is {i} + {i}?"}],
            },
        ]
        rows.append({"id": str(i), "message": json.dumps(message), "answer": f"\\boxed{{{2 * i}}}"})
    out = root / "srpo_rl.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return out


def make_virl39k(root: Path) -> Path:
    """39Krelease.parquet next to an unzipped images/ folder; one two-image row."""
    import pandas as pd

    paths = [write_image(root / "images" / f"img_{i}.png", s).relative_to(root).as_posix() for i, s in enumerate(SIZES)]
    df = pd.DataFrame(
        {
            "question": ["<image>How many apples are left?", "<image>\n<image>\nWhich chart shows more growth?", "<image>Find the angle."],
            "answer": ["\\boxed{3}", "\\boxed{B}", "\\boxed{30^\\circ}"],
            "PassRate_32BTrained": [0.5, 0.25, 0.75],
            "PassRate_7BBase": [0.125, None, 0.5],
            "category": ["(GradeSchool) Non-Geo Math", "Tables/Diagrams/Charts", "(GradeSchool) Geometric"],
            "source": ["MM-Eureka", "R1-OneVision", "MM-Math"],
            "qid": ["q-0", "q-1", "q-2"],
            "image": [[paths[0]], [paths[1], paths[2]], [paths[3]]],
        }
    )
    out = root / "39Krelease.parquet"
    df.to_parquet(out)
    return out


def make_thinklite(root: Path) -> Path:
    import datasets

    feats = {
        "problem": datasets.Value("string"),
        "answer": datasets.Value("string"),
        "image": datasets.Image(),
        "id": datasets.Value("string"),
    }
    ds = _hf_dataset(
        {
            "problem": ["How many objects are red?", "What is the value of the largest bar?"],
            "answer": ["2", "40"],
            "image": [{"bytes": png_bytes(SIZES[1]), "path": None}, {"bytes": png_bytes(SIZES[3]), "path": None}],
            "id": ["tl-1", "tl-2"],
        },
        feats,
    )
    root.mkdir(parents=True)
    out = root / "ThinkLite-VL-hard-11k.parquet"
    ds.to_parquet(str(out))
    return out


def make_generic_jsonl(root: Path) -> Path:
    a = write_image(root / "imgs" / "a.png", SIZES[0]).relative_to(root).as_posix()
    b = write_image(root / "imgs" / "b.png", SIZES[2]).relative_to(root).as_posix()
    rows = [
        {"id": "g1", "question": "What is the perimeter?", "answer": "24", "image": a},
        {"id": "g2", "question": "Compare the two shapes.", "answer": "A", "images": [a, b]},
    ]
    out = root / "data.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return out


def make_generic_csv(root: Path) -> Path:
    import csv

    a = write_image(root / "pics" / "a.png", SIZES[1]).relative_to(root).as_posix()
    out = root / "data.csv"
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["qid", "prompt_text", "gold", "picture"])
        writer.writeheader()
        writer.writerow({"qid": "c1", "prompt_text": "How long is AB?", "gold": "5", "picture": a})
    return out


def load_with_verl(parquet: Path, model_dir: Path, cache_dir: Path, max_prompt_length: int = 8192):
    """Load ``parquet`` through verl 0.9.1's own RLHFDataset with the tiny model's processor."""
    from omegaconf import OmegaConf
    from verl.utils import hf_processor, hf_tokenizer
    from verl.utils.dataset.rl_dataset import RLHFDataset

    config = OmegaConf.create(
        {
            "max_prompt_length": max_prompt_length,
            "filter_overlong_prompts": True,
            # None: filter in this process.  datasets 5 forks a pool even for num_proc=1, and a
            # fork of a process whose tokenizer/torch threads hold locks can deadlock.
            "filter_overlong_prompts_workers": None,
            "cache_dir": str(cache_dir),
        }
    )
    return RLHFDataset(str(parquet), hf_tokenizer(str(model_dir)), config, hf_processor(str(model_dir))), config
