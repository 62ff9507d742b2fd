"""Rebuild ``math_verify_cases.json`` from a checkout of huggingface/Math-Verify.

    git -C MATH_VERIFY show COMMIT:tests/test_all.py > ...   # or a work tree
    .venv/bin/python tests/reward/data/extract_math_verify_cases.py MATH_VERIFY_GIT_DIR COMMIT

Only the literal ``(gold, pred, expected[, ...])`` tuples of each
``@pytest.mark.parametrize`` table are read (with ``ast.literal_eval``); none of
Math-Verify's code is copied or run.  The upstream extraction targets of each table
are recorded as data too, since the upstream verdicts assume them.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

REPO = "huggingface/Math-Verify"
FILES = ("tests/test_all.py", "tests/test_numina_cases.py", "tests/test_open_thoughts.py", "tests/test_boxed.py")


def _match_types(func: ast.FunctionDef) -> list[str] | None:
    for node in ast.walk(func):
        if isinstance(node, ast.keyword) and node.arg == "match_types":
            return ast.literal_eval(node.value)
    return None


def tables(source: str, path: str) -> list[dict]:
    out = []
    for func in ast.parse(source).body:
        if not isinstance(func, ast.FunctionDef):
            continue
        for dec in func.decorator_list:
            if not (isinstance(dec, ast.Call) and getattr(dec.func, "attr", "") == "parametrize"):
                continue
            names = [n.strip() for n in ast.literal_eval(dec.args[0]).split(",")]
            if names[:3] != ["gold", "pred", "expected"]:
                continue
            rows, skipped = [], 0
            for elt in dec.args[1].elts:
                try:
                    rows.append(ast.literal_eval(elt))
                except ValueError:  # a row built by code (an f-string): not data, left out
                    skipped += 1
            out.append({
                "path": path,
                "table": func.name,
                "columns": names,
                "match_types": _match_types(func) or ["latex", "expr"],
                "skipped_non_literal_rows": skipped,
                "cases": [list(r) for r in rows],
            })
    return out


def main(git_dir: str, commit: str) -> None:
    all_tables = []
    for path in FILES:
        src = subprocess.run(["git", "--git-dir", git_dir, "show", f"{commit}:{path}"], check=True,
                             capture_output=True, text=True).stdout
        all_tables.extend(tables(src, path))
    doc = {
        "source": f"https://github.com/{REPO}",
        "commit": commit,
        "license": "MIT (c) 2024 The HuggingFace Team; the case tuples only",
        "note": "cases of each table: [gold, pred, expected, ...other parametrize columns]",
        "tables": all_tables,
    }
    out = Path(__file__).with_name("math_verify_cases.json")
    out.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    print(f"{sum(len(t['cases']) for t in all_tables)} cases in {len(all_tables)} tables -> {out}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
