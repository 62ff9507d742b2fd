"""recipe.srpo.cpu.verify_run's readers and comparisons, on small hand-made artifacts and the tiny models."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from recipe.srpo.cpu import verify_run as vr
from recipe.srpo.cpu.toy_reward import compute_score as toy_score
from recipe.srpo.cpu.toy_reward import toy_accuracy


def test_parse_step_lines_reads_verls_console_format():
    text = (
        "\x1b[36m(SRPOTaskRunner pid=1)\x1b[0m step:1 - actor/grad_norm:0.5 - num_turns/min:np.int32(2) - "
        "training/srpo/fix_rate:nan - training/filter_groups/evicted_samples:8.0\n"
        "noise line\n"
        "step:2 - train/loss:6.5\n"
    )
    steps = vr.parse_step_lines(text)
    assert sorted(steps) == [1, 2]
    assert steps[1]["actor/grad_norm"] == 0.5 and steps[1]["num_turns/min"] == 2.0
    assert math.isnan(steps[1]["training/srpo/fix_rate"])
    assert steps[1]["training/filter_groups/evicted_samples"] == 8.0 and steps[2]["train/loss"] == 6.5


def test_weight_changes_split_language_and_vision_in_both_layouts():
    before = {"model.layers.0.w": torch.zeros(2), "visual.blocks.0.w": torch.zeros(2), "lm_head.weight": torch.zeros(2)}
    after = {"model.language_model.layers.0.w": torch.ones(2), "model.visual.blocks.0.w": torch.zeros(2),
             "lm_head.weight": torch.zeros(2)}
    assert vr.weight_changes(before, after) == {"language": (1, 2), "vision": (0, 1)}
    check = vr._changes_check("x", before, after)
    assert check.ok
    after["model.visual.blocks.0.w"] = torch.ones(2)
    assert not vr._changes_check("x", before, after).ok  # a vision tensor moved


def test_compare_vllm_to_actor_unfuses_and_casts():
    q, k, v = torch.randn(4, 2), torch.randn(2, 2), torch.randn(2, 2)
    actor = {
        "model.language_model.layers.0.self_attn.q_proj.weight": q,
        "model.language_model.layers.0.self_attn.k_proj.weight": k,
        "model.language_model.layers.0.self_attn.v_proj.weight": v,
        "model.visual.blocks.0.attn.qkv.weight": torch.randn(6, 2),
        "lm_head.weight": torch.randn(5, 2),
    }
    vllm = {
        "language_model.model.layers.0.self_attn.qkv_proj.weight": torch.cat([q, k, v]).to(torch.bfloat16),
        "visual.blocks.0.attn.qkv.weight": actor["model.visual.blocks.0.attn.qkv.weight"].to(torch.bfloat16),
        "language_model.lm_head.weight": actor["lm_head.weight"].to(torch.bfloat16),
    }
    assert vr.compare_vllm_to_actor(vllm, actor)[:2] == (3, 3)
    stale = dict(vllm, **{"language_model.lm_head.weight": (actor["lm_head.weight"] + 1).to(torch.bfloat16)})
    equal, compared, problems = vr.compare_vllm_to_actor(stale, actor)
    assert (equal, compared) == (2, 3) and "lm_head" in problems[0]
    _, _, unknown = vr.compare_vllm_to_actor({"language_model.model.extra": torch.zeros(1)}, actor)
    assert unknown == ["language_model.model.extra: no actor tensor"]


def test_evictions_expected_counts_groups_without_spread():
    log = [{"index": 0, "acc": 1.0}] * 4 + [{"index": 1, "acc": a} for a in (1.0, 0.0, 1.0, 1.0)]
    log += [{"index": 3, "acc": 0.0}] * 4
    assert vr.evictions_expected(log, group_size=4) == (3, 2)


def test_sync_check_matches_dumps_to_checkpoints(tmp_path):
    from safetensors.torch import save_file

    sync, grpo = tmp_path / "sync", tmp_path / "grpo"
    sync.mkdir()
    for step, value in ((1, 1.0), (2, 2.0)):
        ckpt = grpo / f"global_step_{step}" / "actor"
        ckpt.mkdir(parents=True)
        torch.save({"lm_head.weight": torch.full((2, 2), value)}, ckpt / "model_world_size_1_rank_0.pt")
    for n, value in enumerate((0.0, 1.0, 2.0)):
        save_file({"language_model.lm_head.weight": torch.full((2, 2), value).to(torch.bfloat16)},
                  str(sync / f"sync-100-{n:03d}.safetensors"))
    check = vr.sync_check(sync, grpo)
    assert check.ok, check.detail
    save_file({"language_model.lm_head.weight": torch.full((2, 2), 1.0).to(torch.bfloat16)},
              str(sync / "sync-100-002.safetensors"))  # the sync after step 2 did not take
    assert not vr.sync_check(sync, grpo).ok


def test_toy_reward_keeps_srpo_keys_and_logs(tmp_path, monkeypatch):
    from srpo_reward import SCORE_KEYS

    log = tmp_path / "toy.jsonl"
    monkeypatch.setenv("SRPO_TOY_REWARD_LOG", str(log))
    even = toy_score("geometry3k", "no format here", "2", {"index": 4})
    assert set(SCORE_KEYS) <= set(even) and even["acc"] == 1.0 == even["toy_acc"] and even["score"] == 1.0
    odd = [toy_score("geometry3k", f"response {i}", "2", {"index": 5})["acc"] for i in range(16)]
    assert set(odd) == {0.0, 1.0}
    assert odd == [toy_accuracy(5, f"response {i}") for i in range(16)]
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(records) == 17 and records[0]["index"] == 4


# ------------------------------------------------------- both families' names, from vLLM's own files
def _vllm_class_attr(module: str, cls: str, attr: str):
    """A literal class attribute of vLLM's model file, read with ast (vLLM is never imported in the suite).

    ``hf_to_vllm_mapper``: the ``orig_to_new_prefix`` dict of its ``WeightsMapper(...)``."""
    import ast
    import importlib.util

    spec = importlib.util.find_spec("vllm")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("vllm is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / "model_executor/models" / f"{module}.py"
    tree = ast.parse(path.read_text())
    node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls)
    value = next(s.value for s in node.body if isinstance(s, ast.Assign) and s.targets[0].id == attr)
    if attr == "hf_to_vllm_mapper":
        value = next(k.value for k in value.keywords if k.arg == "orig_to_new_prefix")
    return ast.literal_eval(value)


def _as_vllm_names(actor: dict, prefixes: dict, packed: dict) -> dict:
    """The actor's weights under the names vLLM's model holds: its prefix mapper applied in its order
    (vllm/model_executor/models/utils.py WeightsMapper: every matching prefix, in turn), then the
    ``packed_modules_mapping`` pieces concatenated into the fused weight."""
    renamed = {}
    for name, tensor in actor.items():
        for old, new in prefixes.items():
            if name.startswith(old):
                name = name.replace(old, new, 1)
        renamed[name] = tensor
    out, used = {}, set()
    for name in sorted(renamed):
        for fused, parts in packed.items():
            if parts == [fused]:
                continue
            if f".{parts[0]}." in name:
                pieces = [name.replace(f".{parts[0]}.", f".{p}.") for p in parts]
                if all(p in renamed for p in pieces):
                    out[name.replace(f".{parts[0]}.", f".{fused}.")] = torch.cat([renamed[p] for p in pieces])
                    used.update(pieces)
    out.update({n: t for n, t in renamed.items() if n not in used})
    return out


@pytest.mark.parametrize("family", ["qwen25vl", "qwen3vl"])
def test_vllm_names_of_both_families_map_back_to_the_actor(family, tiny_qwen_dir, tiny_qwen3vl_dir):
    from safetensors.torch import load_file

    module, cls, folder = {
        "qwen25vl": ("qwen2_5_vl", "Qwen2_5_VLForConditionalGeneration", tiny_qwen_dir),
        "qwen3vl": ("qwen3_vl", "Qwen3VLForConditionalGeneration", tiny_qwen3vl_dir),
    }[family]
    prefixes = _vllm_class_attr(module, cls, "hf_to_vllm_mapper")
    packed = _vllm_class_attr(module, cls, "packed_modules_mapping")
    # the actor's names: verl's checkpoint of the transformers 5 model (hub names renamed on load)
    actor = {vr.canonical_name(k): v for k, v in load_file(str(folder / "model.safetensors")).items()}
    vllm = _as_vllm_names(actor, prefixes, packed)
    assert vllm.keys() != actor.keys()  # vLLM's names differ (prefixes, fused weights)
    fused = [n for n in vllm if ".qkv_proj." in n or ".gate_up_proj." in n]
    assert fused and all(n.startswith("language_model.model.") or n.startswith("visual.") for n in fused)
    if family == "qwen3vl":  # Qwen3-VL's vision MLP stays linear_fc1/linear_fc2; its deepstack mergers exist
        assert not any(n.startswith("visual.") and ".gate_up_proj." in n for n in vllm)
        assert any(n.startswith("visual.deepstack_merger_list.") for n in vllm)
    else:  # Qwen2.5-VL's vision MLP is fused as well
        assert any(n.startswith("visual.") and ".gate_up_proj." in n for n in vllm)
    equal, compared, problems = vr.compare_vllm_to_actor({k: v.to(torch.bfloat16) for k, v in vllm.items()}, actor)
    assert (equal, compared, problems) == (len(vllm), len(vllm), [])


def test_family_check_refuses_a_change_of_architecture(tmp_path):
    folders = []
    for name, model_type in (("base", "qwen3_vl"), ("sft", "qwen3_vl"), ("grpo", "qwen2_5_vl")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps({"model_type": model_type, "architectures": ["X"]}))
        folders.append(tmp_path / name)
    assert vr.family_check(*folders[:2]).ok
    bad = vr.family_check(*folders)
    assert not bad.ok and "grpo: qwen2_5_vl" in bad.detail
    assert not vr.family_check(tmp_path / "missing").ok


def test_image_patch_check_reads_the_grpo_config_dump(tiny_qwen3vl_dir, tiny_qwen_dir):
    dump = "\x1b[36m(SRPOTaskRunner pid=1)\x1b[0m           'image_patch_size': {},\n"
    assert vr.image_patch_check(dump.format(16), tiny_qwen3vl_dir).ok
    wrong = vr.image_patch_check(dump.format(14), tiny_qwen3vl_dir)  # verl's default with Qwen3-VL
    assert not wrong.ok and "data.image_patch_size=14" in wrong.detail and "patch size 16" in wrong.detail
    assert vr.image_patch_check(dump.format(14), tiny_qwen_dir).ok
    assert not vr.image_patch_check("no config here", tiny_qwen_dir).ok


def test_chat_template_check_refuses_the_thinking_template(tiny_qwen3vl_dir, tiny_qwen3vl_thinking_dir):
    assert vr.chat_template_check(tiny_qwen3vl_dir).ok
    thinking = vr.chat_template_check(tiny_qwen3vl_thinking_dir)
    assert not thinking.ok and "verbatim" in thinking.detail
