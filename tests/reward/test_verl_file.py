"""The reward from another verl project: ``pkg://srpo_reward``, and the file form older verl loaders need.

Both go through verl 0.9.1's own loader (``verl.trainer.ppo.reward.get_custom_reward_fn``): given a file
path it executes the file as a standalone module, which is what releases without ``pkg://`` do with every
path.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import srpo_reward
from srpo_reward import compute_score

pytest.importorskip("verl")

RESPONSE = ("<think>7 sides</think> <answer>7</answer> <reflection>Count again.</reflection> "
            "<think>5 sides</think> <answer>\\boxed{5}</answer>")


def verl_reward_fn(path: str):
    from omegaconf import OmegaConf
    from verl.trainer.ppo.reward import get_custom_reward_fn

    return get_custom_reward_fn(OmegaConf.create({"reward": {"custom_reward_function": {
        "path": path, "name": "compute_score", "reward_kwargs": {"eff_fixed": 0.6}}}}))


@pytest.mark.parametrize("path", [
    pytest.param("pkg://srpo_reward", id="pkg"),
    pytest.param(str(Path(srpo_reward.__file__).with_name("verl_file.py")), id="file"),
    pytest.param("file://" + str(Path(srpo_reward.__file__).with_name("verl_file.py")), id="file-url"),
])
def test_verls_loader_scores_with_the_reward(path):
    fn = verl_reward_fn(path)
    got = fn(data_source="geo3k", solution_str=RESPONSE, ground_truth="5", extra_info=None)
    assert got == compute_score("geo3k", RESPONSE, "5", None, eff_fixed=0.6)
    assert got["fixed"] == 1.0 and got["r_eff"] == pytest.approx(0.6)


def test_the_package_itself_cannot_be_loaded_as_a_file():
    """Why the file form exists: verl runs a path as a standalone module under a name of its own
    (``custom_module_<hash>``), so the package's relative imports look for a parent that does not exist."""
    with pytest.raises(RuntimeError, match="Error loading module") as err:
        verl_reward_fn(srpo_reward.__file__)
    assert isinstance(err.value.__cause__, ModuleNotFoundError), err.value.__cause__
    assert "custom_module_" in str(err.value.__cause__)
