"""The dry run's layout arithmetic against the model's heads (recipe/srpo/dry_run/layout.py): vLLM TP and
Ulysses SP of the GPU scripts' layouts on the models they train, and each rule failing with its numbers."""

from __future__ import annotations

import pytest

from recipe.srpo.checks import ConfigError
from recipe.srpo.dry_run.common import Reporter
from recipe.srpo.dry_run.layout import check_layout_heads, check_sp_heads, check_tp_heads, model_heads

# The heads of the models the GPU scripts train, as their published config.json gives them (Qwen2.5-VL's flat
# layout, Qwen3-VL's text_config); not downloaded here.  7B: 3584 wide, 28 heads of 128, k_proj 512 = 4 KV heads.
QWEN25VL_7B = {"model_type": "qwen2_5_vl", "hidden_size": 3584, "num_attention_heads": 28, "num_key_value_heads": 4,
               "vision_config": {"num_heads": 16}}
QWEN25VL_32B = {"model_type": "qwen2_5_vl", "hidden_size": 5120, "num_attention_heads": 40, "num_key_value_heads": 8,
                "vision_config": {"num_heads": 16}}
QWEN3VL_8B = {"model_type": "qwen3_vl", "text_config": {"hidden_size": 4096, "num_attention_heads": 32,
                                                        "num_key_value_heads": 8}, "vision_config": {"num_heads": 16}}
QWEN3VL_32B = {"model_type": "qwen3_vl", "text_config": {"hidden_size": 5120, "num_attention_heads": 64,
                                                         "num_key_value_heads": 8}, "vision_config": {"num_heads": 16}}
TINY = {"model_type": "qwen2_5_vl", "hidden_size": 64, "num_attention_heads": 2, "num_key_value_heads": 1,
        "vision_config": {"num_heads": 2}}


def test_heads_are_read_from_either_config_layout():
    assert model_heads(QWEN25VL_7B) == {"text heads": 28, "text KV heads": 4, "vision heads": 16}
    assert model_heads(QWEN3VL_32B) == {"text heads": 64, "text KV heads": 8, "vision heads": 16}


@pytest.mark.parametrize("config, tp, sp", [
    pytest.param(QWEN25VL_7B, 2, 1, id="run_qwen7b_srpo.sh"),
    pytest.param(QWEN25VL_32B, 4, 2, id="run_qwen32b_srpo.sh"),
    pytest.param(QWEN3VL_8B, 2, 1, id="run_qwen3vl8b_srpo.sh"),
    pytest.param(QWEN3VL_32B, 4, 2, id="run_qwen3vl32b_srpo.sh"),
])
def test_the_gpu_scripts_layouts_fit_their_models(config, tp, sp):
    heads = model_heads(config)
    assert check_tp_heads(tp, heads).startswith(f"TP {tp} divides")
    check_sp_heads(sp, heads, "engine.ulysses_sequence_parallel_size")


@pytest.mark.parametrize("config, tp, message", [
    # 28 heads: TP 8 is a valid GPU count per node but splits no head evenly
    pytest.param(QWEN25VL_7B, 8, "tensor_model_parallel_size=8 does not divide the model's 28 text heads",
                 id="tp-vs-text-heads"),
    pytest.param({**QWEN25VL_32B, "num_key_value_heads": 6}, 4, "4 and the model's 6 KV heads: neither divides",
                 id="tp-vs-kv-heads"),
    pytest.param({**QWEN25VL_32B, "vision_config": {"num_heads": 12}}, 8, "does not divide the model's 12 vision heads",
                 id="tp-vs-vision-heads"),
])
def test_a_tp_the_heads_do_not_admit_fails_with_the_numbers(config, tp, message):
    with pytest.raises(ConfigError, match=message):
        check_tp_heads(tp, model_heads(config))


def test_kv_heads_fewer_than_tp_are_replicated():
    assert "each KV head on 2 ranks" in check_tp_heads(8, model_heads({**QWEN25VL_32B, "num_key_value_heads": 4}))


@pytest.mark.parametrize("config, sp, message", [
    pytest.param(QWEN25VL_7B, 8, "ulysses_sequence_parallel_size=8 does not divide the model's 28 text", id="sp-vs-heads"),
    pytest.param({**QWEN25VL_32B, "num_key_value_heads": 6}, 4, "4 and the model's 6 KV heads", id="sp-vs-kv-heads"),
])
def test_an_sp_the_heads_do_not_admit_fails_with_the_numbers(config, sp, message):
    with pytest.raises(ConfigError, match=message):
        check_sp_heads(sp, model_heads(config), "engine.ulysses_sequence_parallel_size")


def test_a_real_model_fails_but_a_tiny_stand_in_is_a_note(capsys):
    report = Reporter("grpo")
    with pytest.raises(ConfigError, match="28 text heads"):
        check_layout_heads(report, "parallel heads", QWEN25VL_7B, 8, {})
    check_layout_heads(report, "parallel heads", TINY, 4, {"engine.ulysses_sequence_parallel_size": 2})
    out = capsys.readouterr().out
    assert "[NOTE] grpo: parallel heads" in out and "2 text heads" in out and "tiny stand-in (hidden size 64)" in out
    check_layout_heads(report, "parallel heads", QWEN25VL_32B, 4, {"engine.ulysses_sequence_parallel_size": 2})
    assert "[  OK] grpo: parallel heads -- TP 4 divides 40 text heads" in capsys.readouterr().out
