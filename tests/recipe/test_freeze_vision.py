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


def test_verl_external_lib_hook_patches_its_fsdp_engine(tiny_qwen_dir):
    """verl's HFModelConfig imports model.external_lib: with the recipe's config that installs the freeze."""
    from verl.utils.config import omega_conf_to_dataclass
    from verl.workers.engine.fsdp.transformer_impl import FSDPEngine

    from recipe.srpo.dry_run import GRPO_CONFIG, compose

    cfg = compose(GRPO_CONFIG, [f"actor_rollout_ref.model.path={tiny_qwen_dir}"])
    omega_conf_to_dataclass(cfg.actor_rollout_ref.model)
    assert freeze_vision.is_installed(FSDPEngine)
