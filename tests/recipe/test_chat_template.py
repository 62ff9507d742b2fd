"""The chat template check (recipe/srpo/chat_template.py) on tiny models with the real templates.

Qwen3-VL Thinking's template (srpo_data/offline/qwen3vl_templates.py) rewrites the SFT target and
prefills ``<think>``: the dry run refuses it in both stages, before any data is read, and the
recipe's fix (a copy of the model with the Instruct template) passes.
"""

from __future__ import annotations

import io
import json

import pytest

from recipe.srpo import dry_run
from recipe.srpo.chat_template import SAMPLE_TARGET, check_chat_template, main, write_with_template
from recipe.srpo.checks import ConfigError
from srpo_data.offline.qwen3vl_templates import QWEN3_VL_INSTRUCT_CHAT_TEMPLATE, QWEN3_VL_THINKING_CHAT_TEMPLATE


def _processor(folder):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(folder)


@pytest.mark.parametrize("fixture", ["tiny_qwen_dir", "tiny_qwen3vl_dir"], ids=["qwen25vl", "qwen3vl-instruct"])
def test_instruct_templates_pass(request, fixture):
    summary = check_chat_template(_processor(request.getfixturevalue(fixture)))
    assert "verbatim" in summary and r"ends in '<|im_start|>assistant\n'" in summary


def test_thinking_template_is_refused_for_the_blocks_it_drops(tiny_qwen3vl_thinking_dir):
    with pytest.raises(ConfigError) as exc:
        check_chat_template(_processor(tiny_qwen3vl_thinking_dir))
    message = str(exc.value)
    # the real template keeps the text before the first </think> and after the last one
    assert "keeps <think>first thought, <answer>second answer" in message
    assert "loses <answer>first answer, <reflection>a reflection, <think>second thought" in message
    assert "python -m recipe.srpo.chat_template --model MODEL --out" in message


def test_a_prefill_alone_is_refused(tiny_qwen3vl_dir):
    # the Instruct template with the Thinking generation prompt: the target renders, the prefill is refused
    processor = _processor(tiny_qwen3vl_dir)
    processor.chat_template = QWEN3_VL_INSTRUCT_CHAT_TEMPLATE.replace(
        "{{- '<|im_start|>assistant\\n' }}", "{{- '<|im_start|>assistant\\n<think>\\n' }}"
    )
    assert processor.chat_template != QWEN3_VL_INSTRUCT_CHAT_TEMPLATE
    rendered = processor.apply_chat_template([{"role": "assistant", "content": SAMPLE_TARGET}], tokenize=False)
    assert SAMPLE_TARGET in rendered
    with pytest.raises(ConfigError, match=r"generation prompt ends in '<\|im_start\|>assistant\\n<think>\\n': "
                                          r"it prefills <think>, which the SRPO format checker expects"):
        check_chat_template(processor)


def _dry(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    return dry_run.run(argv, out=out), out.getvalue()


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["sft", "--", "model.path={model}", "data.train_files=/not/read.parquet",
                      "trainer.nnodes=1", "trainer.n_gpus_per_node=8"], id="sft"),
        pytest.param(["grpo", "--", "actor_rollout_ref.model.path={model}", "data.train_files=/not/read.parquet",
                      "data.val_files=/not/read.parquet", "trainer.nnodes=1", "trainer.n_gpus_per_node=8"], id="grpo"),
    ],
)
def test_dry_run_refuses_the_thinking_template_before_reading_data(tiny_qwen3vl_thinking_dir, argv):
    code, out = _dry([a.format(model=tiny_qwen3vl_thinking_dir) for a in argv])
    stage = argv[0]
    assert code == 1, out
    fails = [line for line in out.splitlines() if line.startswith("[FAIL]")]
    assert len(fails) == 1 and fails[0].startswith(f"[FAIL] {stage}: chat template -- "), out
    assert "does not render an SRPO five-block SFT target verbatim" in fails[0]
    assert f"[  OK] {stage}: model" in out


def test_the_fix_writes_a_model_with_the_instruct_template(tiny_qwen3vl_thinking_dir, tmp_path, capsys):
    assert main(["--model", str(tiny_qwen3vl_thinking_dir)]) == 1
    assert "REFUSED" in capsys.readouterr().out
    out = tmp_path / "instruct"
    assert main(["--model", str(tiny_qwen3vl_thinking_dir), "--out", str(out)]) == 0
    assert "OK " in capsys.readouterr().out
    processor = _processor(out)
    assert processor.chat_template == QWEN3_VL_INSTRUCT_CHAT_TEMPLATE
    assert (out / "model.safetensors").resolve() == (tiny_qwen3vl_thinking_dir / "model.safetensors").resolve()
    assert "chat_template" not in json.loads((out / "processor_config.json").read_text())
    # the source folder is untouched
    assert (tiny_qwen3vl_thinking_dir / "chat_template.jinja").read_text() == QWEN3_VL_THINKING_CHAT_TEMPLATE
    # idempotent: writing again over the same folder works
    assert write_with_template(tiny_qwen3vl_thinking_dir, out, QWEN3_VL_INSTRUCT_CHAT_TEMPLATE) == out


def test_write_with_template_refuses_a_non_model_folder(tmp_path):
    with pytest.raises(ConfigError, match="not a Hugging Face model folder"):
        write_with_template(tmp_path, tmp_path / "out", QWEN3_VL_INSTRUCT_CHAT_TEMPLATE)
