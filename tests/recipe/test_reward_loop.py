"""The recipe's reward inside verl 0.9.1's own reward machinery.

- in verl's real reward loop on a local Ray cluster (RewardLoopManager -> RewardLoopWorker actor ->
  NaiveRewardManager, which runs the sync ``compute_score`` in an executor thread), on a real
  ``DataProto`` of the tiny model's own generations (plus well-formed SRPO responses tokenized with
  the same tokenizer): the scores equal direct ``compute_score`` calls;
- in-process, that verl's manager calls the recipe's ``compute_score`` off the event loop's thread.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

import srpo_reward
from recipe.srpo.dry_run import GRPO_CONFIG, compose, synthetic_responses

GROUND_TRUTH = "5"


def _responses() -> list[str]:
    """Fixed, kept, broke and malformed SRPO responses for GROUND_TRUTH."""
    made = synthetic_responses(GROUND_TRUTH)
    first = "<think> 3-4-5 triangle. </think> <answer> \\boxed{5} </answer> <reflection> Check it. </reflection> "
    kept = first + "<think> sqrt(25) = 5. </think> <answer> \\boxed{5} </answer>"
    broke = first + "<think> 3 + 4 = 7. </think> <answer> \\boxed{7} </answer>"
    return [made["fixed"], kept, broke, made["malformed"]]


def build_batch(tiny_qwen_dir) -> tuple[object, list[list[int]], object]:
    """A DataProto like the rollout's: prompts left-padded, responses right-padded, from the tiny model."""
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from verl import DataProto

    processor = AutoProcessor.from_pretrained(tiny_qwen_dir)
    tokenizer = processor.tokenizer
    model = AutoModelForImageTextToText.from_pretrained(tiny_qwen_dir).eval()
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": srpo_reward.render_prompt("x?")}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=[Image.new("RGB", (56, 56), (10, 200, 30))], return_tensors="pt")
    torch.manual_seed(0)
    with torch.no_grad():
        generated = model.generate(**inputs, max_new_tokens=24, do_sample=True, pad_token_id=tokenizer.pad_token_id)
    prompt_ids = inputs["input_ids"][0].tolist()
    own = generated[0, len(prompt_ids):].tolist()  # the tiny model's own tokens (random weights)
    responses = [own, own[: len(own) // 2]] + [tokenizer(r + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
                                              for r in _responses()]
    width = max(len(r) for r in responses)
    pad = tokenizer.pad_token_id
    resp = torch.tensor([r + [pad] * (width - len(r)) for r in responses])
    resp_mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in responses])
    prompts = torch.tensor([prompt_ids] * len(responses))
    attention = torch.cat([torch.ones_like(prompts), resp_mask], dim=1)
    n = len(responses)
    data = DataProto.from_dict(
        tensors={"prompts": prompts, "responses": resp, "attention_mask": attention,
                 "input_ids": torch.cat([prompts, resp], dim=1)},
        non_tensors={
            "data_source": np.array(["hiyouga/geometry3k"] * n, dtype=object),
            "reward_model": np.array([{"ground_truth": GROUND_TRUTH, "style": "rule"}] * n, dtype=object),
            "extra_info": np.array([{"index": i} for i in range(n)], dtype=object),
        },
    )
    return data, responses, tokenizer


from recipe.srpo.reward_manager import VALID_TOKENS_KEY, with_token_counts  # noqa: E402


def reward_kwargs(cfg) -> dict:
    return OmegaConf.to_container(cfg.reward.custom_reward_function.reward_kwargs, resolve=True)


@pytest.mark.slow
def test_scores_from_verls_ray_reward_loop_equal_direct_calls(tiny_qwen_dir):
    import ray
    from verl.experimental.reward_loop import RewardLoopManager

    cfg = compose(GRPO_CONFIG, [f"actor_rollout_ref.model.path={tiny_qwen_dir}", "reward.num_workers=1"])
    data, responses, tokenizer = build_batch(tiny_qwen_dir)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        out = RewardLoopManager(cfg).compute_rm_score(data)
    finally:
        ray.shutdown()

    scores = out.batch["rm_scores"]
    kwargs = reward_kwargs(cfg)
    assert set(out.meta_info["reward_extra_keys"]) >= {"score", "acc", "acc_first", "fixed", "kept", "broke"}
    for i, ids in enumerate(responses):
        text = tokenizer.decode(ids, skip_special_tokens=True)
        # the recipe's reward manager passes the policy tokenizer's counts of L and L1 (paper eq. 8)
        info = with_token_counts(tokenizer, {"index": i, VALID_TOKENS_KEY: len(ids)}, text)
        direct = srpo_reward.compute_score("hiyouga/geometry3k", text, GROUND_TRUTH, info, **kwargs)
        if "srpo_token_counts" in info:
            counts = info["srpo_token_counts"]
            assert float(out.non_tensor_batch["len_ratio"][i]) == pytest.approx(counts["total"] / counts["first_attempt"])
        # the score sits on the last valid response token, zeros elsewhere
        assert scores[i, len(ids) - 1].item() == pytest.approx(direct["score"])
        assert scores[i].sum().item() == pytest.approx(direct["score"])
        for key in ("acc", "acc_first", "fixed", "kept", "broke", "format"):
            assert float(out.non_tensor_batch[key][i]) == direct[key]
    # the rows are really different cases: random tokens, fixed, kept, broke, malformed
    fixed, kept, broke, malformed = (float(scores[i].sum()) for i in range(2, 6))
    assert kept > fixed > broke > malformed  # the paper ranks right-then-right above wrong-then-right
    assert [float(out.non_tensor_batch["fixed"][2]), float(out.non_tensor_batch["broke"][4])] == [1.0, 1.0]


def test_naive_manager_runs_compute_score_in_a_worker_thread(tiny_qwen_dir, monkeypatch):
    from verl.trainer.ppo.reward import load_reward_manager

    threads = []
    original = srpo_reward.compute_score

    def spy(*args, **kwargs):
        threads.append(threading.current_thread())
        return original(*args, **kwargs)

    monkeypatch.setattr(srpo_reward, "compute_score", spy)  # verl's loader resolves pkg://srpo_reward:compute_score
    cfg = compose(GRPO_CONFIG, [f"actor_rollout_ref.model.path={tiny_qwen_dir}"])
    data, responses, tokenizer = build_batch(tiny_qwen_dir)
    manager = load_reward_manager(cfg, tokenizer)
    out = manager.loop.run_until_complete(manager.run_single(data[2:3]))
    assert threads and all(t is not threading.main_thread() for t in threads)
    assert out["reward_extra_info"]["fixed"] == 1.0
