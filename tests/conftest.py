"""Shared fixtures.

``tiny_qwen_dir``: a random-weight Qwen2.5-VL built offline by
``srpo_data.tiny_qwen`` once per test session (cached under the pytest
cache dir so reruns are instant).
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_qwen_dir(tmp_path_factory):
    from srpo_data.tiny_qwen import build_tiny_qwen25vl

    out = tmp_path_factory.mktemp("tiny_qwen25vl")
    return build_tiny_qwen25vl(out)
