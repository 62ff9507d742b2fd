"""The vision-tower freeze that verl 0.9.1's freeze_vision_tower key does not do."""

from __future__ import annotations

import pytest
import torch

from recipe.srpo import freeze_vision


@pytest.fixture(scope="module")
def tiny_model(tiny_qwen_dir):
    from transformers import AutoModelForImageTextToText

    return AutoModelForImageTextToText.from_pretrained(tiny_qwen_dir)


def test_freezes_tower_and_projector_only(tiny_model):
    frozen = freeze_vision.freeze_vision(tiny_model)
    names = {n: p.requires_grad for n, p in tiny_model.named_parameters()}
    vision = [n for n in names if ".visual." in f".{n}"]
    assert frozen == len(vision) > 0
    assert any(".merger." in n for n in vision)  # the projector is frozen too
    assert not any(names[n] for n in vision)
    assert all(req for n, req in names.items() if n not in vision)


def test_text_only_model_is_an_error():
    with pytest.raises(ValueError, match="no vision parameters"):
        freeze_vision.freeze_vision(torch.nn.Linear(2, 2))


@pytest.mark.parametrize(
    "name, expected",
    [
        pytest.param("model.visual.blocks.0.attn.qkv.weight", True, id="tower"),
        pytest.param("model.visual.merger.mlp.0.weight", True, id="projector"),
        pytest.param("visual.patch_embed.proj.weight", True, id="old-layout"),
        pytest.param("model.language_model.layers.0.mlp.up_proj.weight", False, id="llm"),
        pytest.param("lm_head.weight", False, id="head"),
    ],
)
def test_is_vision_param(name, expected):
    assert freeze_vision.is_vision_param(name) is expected


class _Cfg:
    def __init__(self, forward_only: bool):
        self.forward_only = forward_only


class _TinyVL(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.visual = torch.nn.Linear(2, 2)
        self.lm = torch.nn.Linear(2, 2)


@pytest.mark.parametrize("forward_only, vision_trainable", [
    pytest.param(False, False, id="training-engine-freezes"),
    pytest.param(True, True, id="forward-only-engine-untouched"),
])
def test_install_wraps_build_module_once(forward_only, vision_trainable):
    class FakeEngine:
        def __init__(self):
            self.engine_config = _Cfg(forward_only)

        def _build_module(self):
            return _TinyVL()

    assert freeze_vision.install(FakeEngine) is True
    assert freeze_vision.install(FakeEngine) is False  # idempotent
    assert freeze_vision.is_installed(FakeEngine)
    module = FakeEngine()._build_module()
    assert module.visual.weight.requires_grad is vision_trainable
    assert module.lm.weight.requires_grad is True


#: A fresh interpreter that imports verl (never this recipe), composes the recipe's config with
#: Hydra and builds the model config with verl's own ``omega_conf_to_dataclass``, as verl's
#: trainers and workers do (``sft_trainer.py``: ``self.config.model``; ``engine_workers.py``:
#: ``self.config.model`` of ``actor_rollout_ref``).  Only verl's ``model.external_lib`` hook
#: (``HFModelConfig.__post_init__``) can then import the freeze (this test file imports
#: recipe.srpo.freeze_vision itself, so the check cannot run in the pytest process).
HOOK_PROBE = r"""
import json, sys
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
import verl
from verl.utils.config import omega_conf_to_dataclass
from verl.workers.engine.fsdp.transformer_impl import FSDPEngine

config_dir, config_name, model_key, overrides = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
FLAG = "_srpo_freeze_vision_patched"
with initialize_config_dir(config_dir=config_dir, version_base=None, job_name="hook_probe"):
    cfg = compose(config_name=config_name, overrides=overrides)
model_cfg = OmegaConf.select(cfg, model_key)
before = {"imported": "recipe.srpo.freeze_vision" in sys.modules,
          "patched": getattr(FSDPEngine._build_module, FLAG, False)}
built = omega_conf_to_dataclass(model_cfg)
print(json.dumps({"before": before, "external_lib": model_cfg.external_lib, "built": type(built).__name__,
                  "imported": "recipe.srpo.freeze_vision" in sys.modules,
                  "patched": getattr(FSDPEngine._build_module, FLAG, False)}))
"""


@pytest.mark.parametrize("config_name, model_key", [
    pytest.param("srpo_trainer", "actor_rollout_ref.model", id="grpo-actor"),
    pytest.param("srpo_sft", "model", id="sft"),
])
def test_verl_external_lib_hook_patches_its_fsdp_engine(tiny_qwen_dir, config_name, model_key):
    """verl's HFModelConfig imports model.external_lib: with the recipe's config, that alone installs the freeze."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k not in {"VERL_PLATFORM", "VERL_USE_EXTERNAL_MODULES"}}
    env["PYTHONPATH"] = str(root)  # so that verl's import of recipe.srpo.freeze_vision can find it
    argv = [sys.executable, "-c", HOOK_PROBE, str(root / "recipe/srpo/config"), config_name, model_key,
            json.dumps([f"{model_key}.path={tiny_qwen_dir}"])]
    proc = subprocess.run(argv, env=env, cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    # verl's platform plugins may import other recipe modules; never the freeze before the hook
    assert got["before"] == {"imported": False, "patched": False}
    assert got["external_lib"] == "recipe.srpo.freeze_vision" and got["built"] == "HFModelConfig"
    assert got["imported"] is True and got["patched"] is True
