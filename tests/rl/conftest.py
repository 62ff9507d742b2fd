"""Fixtures for the RL preprocessing tests (srpo_data.rl; builders live in data_lookalikes.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_processor(tiny_qwen_dir):
    from verl.utils import hf_processor

    processor = hf_processor(str(tiny_qwen_dir))
    assert processor is not None, "verl.utils.hf_processor returned None (is torchvision installed?)"
    return processor


@pytest.fixture(scope="session")
def length_counter(tiny_processor):
    from srpo_data.rl.prompt_length import PromptLengthCounter

    return PromptLengthCounter(tiny_processor)
