"""The recipe's Hydra configs: a comment above every key, paper values, reward weights in sync."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from recipe.srpo.checks import ConfigError, check_no_legacy_reward_key
from recipe.srpo.dry_run import CONFIG_DIR, GRPO_CONFIG, SFT_CONFIG, compose
from srpo_reward import RewardConfig

CONFIG_FILES = sorted(CONFIG_DIR.glob("*.yaml"))
_KEY = re.compile(r"^(\s*)([A-Za-z_][\w@.-]*)\s*:")


def keys_without_comment(text: str) -> list[str]:
    """Keys whose nearest non-blank line above is not a comment (verl's own config rule)."""
    missing = []
    previous = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        match = _KEY.match(line)
        if match and not stripped.startswith("#") and not previous.startswith("#"):
            missing.append(match.group(2))
        previous = stripped
    return missing


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param("# c\na: 1\n\n# d\nb:\n  # e\n  c: 2\n", [], id="all-commented"),
        pytest.param("# c\na: 1\nb: 2\n", ["b"], id="second-key-bare"),
        pytest.param("a:\n  # ok\n  b: 1\n", ["a"], id="parent-bare"),
        pytest.param("# c\nlist:\n  - x\n  - y\n", [], id="list-items-are-not-keys"),
        pytest.param("# c\na: 1 # inline only\nb: 2\n", ["b"], id="inline-comment-does-not-count"),
    ],
)
def test_comment_rule_checker(text, expected):
    assert keys_without_comment(text) == expected


def test_config_files_found():
    assert {p.name for p in CONFIG_FILES} == {"srpo_trainer.yaml", "srpo_sft.yaml"}


@pytest.mark.parametrize("path", [pytest.param(p, id=p.name) for p in CONFIG_FILES])
def test_every_key_has_a_comment_above(path: Path):
    assert keys_without_comment(path.read_text()) == []


@pytest.mark.parametrize("path", [pytest.param(p, id=p.name) for p in CONFIG_FILES])
def test_no_inline_comments_after_values(path: Path):
    bad = [line for line in path.read_text().splitlines() if _KEY.match(line) and " #" in line]
    assert bad == []


def test_reward_kwargs_are_exactly_the_reward_config_fields_with_their_defaults():
    yaml_kwargs = OmegaConf.to_container(
        OmegaConf.load(CONFIG_DIR / "srpo_trainer.yaml").reward.custom_reward_function.reward_kwargs
    )
    defaults = {f.name: getattr(RewardConfig(), f.name) for f in dataclasses.fields(RewardConfig)}
    assert list(yaml_kwargs) == list(defaults), "YAML reward_kwargs out of sync with srpo_reward.RewardConfig"
    assert yaml_kwargs == defaults


@pytest.fixture(scope="module")
def grpo_cfg():
    return compose(GRPO_CONFIG, [])


@pytest.fixture(scope="module")
def sft_cfg():
    return compose(SFT_CONFIG, [])


@pytest.mark.parametrize(
    "key, expected",
    [
        pytest.param("data.train_batch_size", 128, id="batch-128"),
        pytest.param("actor_rollout_ref.actor.ppo_mini_batch_size", 128, id="one-update-per-batch"),
        pytest.param("actor_rollout_ref.rollout.n", 8, id="n-8"),
        pytest.param("actor_rollout_ref.rollout.temperature", 1.0, id="temperature-1"),
        pytest.param("actor_rollout_ref.rollout.name", "vllm", id="vllm"),
        pytest.param("actor_rollout_ref.actor.optim.lr", 1e-6, id="lr-1e-6"),
        pytest.param("data.max_prompt_length", 1024, id="prompt-1024"),
        pytest.param("data.max_response_length", 2048, id="response-2048"),
        pytest.param("trainer.total_epochs", 3, id="epochs-3"),
        pytest.param("algorithm.adv_estimator", "grpo", id="grpo"),
        pytest.param("algorithm.filter_groups.enable", True, id="filter-on"),
        pytest.param("algorithm.filter_groups.metric", "acc", id="filter-on-final-acc"),
        pytest.param("actor_rollout_ref.model.enable_gradient_checkpointing", True, id="grad-ckpt"),
        pytest.param("actor_rollout_ref.model.external_lib", "recipe.srpo.freeze_vision", id="freeze-hook"),
        pytest.param("actor_rollout_ref.actor.fsdp_config.strategy", "fsdp2", id="fsdp2"),
        pytest.param("reward.custom_reward_function.path", "pkg://srpo_reward", id="reward-path"),
        pytest.param("reward.custom_reward_function.name", "compute_score", id="reward-name"),
        pytest.param("data.custom_cls.path", "pkg://recipe.srpo.dataset", id="dataset-path"),
        pytest.param("data.custom_cls.name", "SRPODataset", id="dataset-name"),
        pytest.param("custom_reward_function.path", None, id="legacy-key-unset"),
        pytest.param("trainer.v1.trainer_mode", "sync", id="sync-trainer"),
    ],
)
def test_grpo_config_values(grpo_cfg, key, expected):
    assert OmegaConf.select(grpo_cfg, key) == expected


@pytest.mark.parametrize(
    "key, expected",
    [
        pytest.param("optim.lr", 1e-5, id="lr-1e-5"),
        pytest.param("optim.lr_scheduler_type", "cosine", id="cosine"),
        pytest.param("optim.lr_warmup_steps_ratio", 0.1, id="warmup-0.1"),
        pytest.param("trainer.total_epochs", 1, id="epochs-1"),
        pytest.param("data.max_length", 4096, id="cutoff-4096"),
        pytest.param("data.max_image_pixels", 262144, id="max-pixels"),
        pytest.param("data.custom_cls.name", "SRPOSFTDataset", id="dataset"),
        pytest.param("model.external_lib", "recipe.srpo.freeze_vision", id="freeze-hook"),
        pytest.param("engine.strategy", "fsdp2", id="fsdp2"),
    ],
)
def test_sft_config_values(sft_cfg, key, expected):
    assert OmegaConf.select(sft_cfg, key) == expected


def test_reward_weight_overrides_without_plus():
    cfg = compose(GRPO_CONFIG, ["reward.custom_reward_function.reward_kwargs.eff_fixed=0.6"])
    assert cfg.reward.custom_reward_function.reward_kwargs.eff_fixed == 0.6


def test_legacy_key_composes_in_verl_but_is_refused_by_the_recipe():
    # verl 0.9.1 accepts the old key without a word (the trap the recipe guards against) ...
    cfg = compose(GRPO_CONFIG, ["custom_reward_function.path=pkg://srpo_reward"])
    assert cfg.custom_reward_function.path == "pkg://srpo_reward"
    # ... and the recipe's check names the key to use instead.
    with pytest.raises(ConfigError, match=r"reward\.custom_reward_function\.path=pkg://srpo_reward"):
        check_no_legacy_reward_key(cfg)


@pytest.fixture(scope="module")
def grpo_yaml():
    """The recipe's own GRPO file, before verl's defaults fill it in: what the recipe pins itself."""
    return OmegaConf.load(CONFIG_DIR / "srpo_trainer.yaml")


@pytest.mark.parametrize(
    "key, expected",
    [
        pytest.param("actor_rollout_ref.actor.use_kl_loss", False, id="no-kl-loss"),
        pytest.param("actor_rollout_ref.actor.kl_loss_coef", 0.0, id="kl-loss-coef-0"),
        pytest.param("algorithm.use_kl_in_reward", False, id="no-kl-in-reward"),
        pytest.param("algorithm.kl_ctrl.kl_coef", 0.0, id="kl-reward-coef-0"),
    ],
)
def test_kl_term_is_pinned_off_in_the_recipe_file(grpo_yaml, key, expected):
    # verl's defaults are the same today; the recipe pins them so a verl default change cannot switch KL on
    assert OmegaConf.select(grpo_yaml, key, default="unset") == expected


def test_no_reference_model_is_built_and_no_dead_reference_keys_are_set(grpo_cfg, grpo_yaml):
    from verl.trainer.ppo.utils import need_reference_policy

    assert need_reference_policy(grpo_cfg) is False
    assert "ref" not in grpo_yaml.actor_rollout_ref, "keys for a reference model that is never built"


def test_gpu_config_filters_overlong_prompts_with_several_workers(grpo_yaml):
    # null (one process) is the CPU tests' workaround; on 37K prompts it costs about 11 minutes
    workers = grpo_yaml.data.filter_overlong_prompts_workers
    assert isinstance(workers, int) and workers >= 2
