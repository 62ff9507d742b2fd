"""Is the model's chat template fit for SRPO?  And a fix for one that is not (Qwen3-VL Thinking).

SRPO trains the policy to write, and rewards it for writing, the whole response
``<think>T1</think> <answer>A1</answer> <reflection>R</reflection> <think>T2</think> <answer>A2</answer>``.
Two template behaviours break that, and the Qwen3-VL Thinking template has both
(:mod:`srpo_data.offline.qwen3vl_templates`, tests/recipe/test_chat_template.py):

- **it rewrites the SFT target.**  verl's SFT dataset renders the assistant message through the
  chat template; a template that splits the content at ``</think>`` keeps the text before the
  first one as "reasoning" and the text after the last one as "content": T1 and A2 survive, A1,
  the reflection and T2 are never trained on.
- **it prefills what the policy must write.**  A generation prompt ending in ``<think>\\n`` makes
  every rollout start inside a think block the policy did not write; verl decodes only the
  response, so the reward's format check (which needs the opening ``<think>``) fails every one of
  them, and the SFT model (trained to open the block itself) would open a second one.

The recipe's answer is the Instruct template: train Qwen3-VL Thinking weights with a chat template
that renders the target verbatim and ends the generation prompt at ``<|im_start|>assistant\\n``
(the Qwen3-VL Instruct one; the reward, the SFT data and the format prompt stay as for
Qwen2.5-VL).  ``python -m recipe.srpo.chat_template --model SRC --out DST`` writes DST, a folder
of links to SRC's files with that template instead of SRC's (the SFT stage's ``MODEL_PATH``;
verl's merger carries the template on to the merged policy).  :func:`check_chat_template` is what
the dry run's ``chat template`` check runs for the SFT and the GRPO stage.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path
from typing import Any

from recipe.srpo.checks import ConfigError

#: A target in the SRPO format (spec "Response format"), one distinct word per block.
SAMPLE_TARGET = (
    "<think>first thought</think> <answer>first answer</answer> <reflection>a reflection</reflection> "
    "<think>second thought</think> <answer>second answer</answer>"
)
_BLOCKS = re.findall(r"<(think|answer|reflection)>(.*?)</\1>", SAMPLE_TARGET)
#: The tags of the format the reward checks (srpo_reward/format.py); none may sit in a generation prompt.
FORMAT_TAGS = ("<think>", "</think>", "<answer>", "</answer>", "<reflection>", "</reflection>")

FIX = (
    "use a template that renders the assistant message verbatim and ends the generation prompt at "
    "'<|im_start|>assistant\\n' (the Instruct one): for Qwen3-VL Thinking weights, "
    "python -m recipe.srpo.chat_template --model MODEL --out MODEL_WITH_INSTRUCT_TEMPLATE and set MODEL_PATH to it "
    "(or use the Instruct checkpoint)"
)


def _messages(with_target: bool) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is x?"}]}
    ]
    if with_target:
        messages.append({"role": "assistant", "content": SAMPLE_TARGET})
    return messages


def check_chat_template(processor: Any) -> str:
    """Refuse a chat template that drops SFT target blocks or prefills a format tag; return a summary.

    ``processor``: anything with ``apply_chat_template`` (verl's processor, or the tokenizer of a
    text-only model).  Raises :class:`ConfigError` naming what the template does and the fix.
    """
    rendered = processor.apply_chat_template(_messages(True), tokenize=False)
    if SAMPLE_TARGET not in rendered:
        kept = [f"<{tag}>{body}" for tag, body in _BLOCKS if body in rendered]
        lost = [f"<{tag}>{body}" for tag, body in _BLOCKS if body not in rendered]
        how = f"keeps {', '.join(kept) or 'none'}; loses {', '.join(lost)}" if lost else "rewrites the tags"
        raise ConfigError(
            "the chat template does not render an SRPO five-block SFT target verbatim: of "
            f"'{SAMPLE_TARGET}' it {how} (a Thinking template moves the text around '</think>' into its "
            f"own think block), so SFT would never train on the reflection. Fix: {FIX}"
        )
    without = processor.apply_chat_template(_messages(False), tokenize=False)
    prompt = processor.apply_chat_template(_messages(False), add_generation_prompt=True, tokenize=False)
    suffix = prompt[len(without):] if prompt.startswith(without) else prompt[-64:]
    prefilled = [tag for tag in FORMAT_TAGS if tag in suffix]
    if prefilled:
        raise ConfigError(
            f"the chat template's generation prompt ends in {suffix!r}: it prefills {', '.join(prefilled)}, which "
            "the SRPO format checker expects the policy to write (verl scores only the generated response, so "
            f"every rollout would fail the format check). Fix: {FIX}"
        )
    return f"renders the five-block SFT target verbatim; generation prompt ends in {suffix!r} (no format tag)"


#: Files of a Hugging Face folder that may carry a chat template (transformers 5 reads all of them).
_TEMPLATE_FILES = ("chat_template.jinja", "chat_template.json")
_CONFIGS_WITH_TEMPLATE = ("tokenizer_config.json", "processor_config.json", "preprocessor_config.json")


def write_with_template(src: str | os.PathLike[str], out: str | os.PathLike[str], template: str) -> Path:
    """Make ``out`` a model folder with ``src``'s files (symlinked) and ``template`` as its only chat template.

    Configs that embed a template are copied without it; ``chat_template.jinja`` holds ``template``.
    """
    src_dir, out_dir = Path(src).resolve(), Path(out)
    if not (src_dir / "config.json").is_file():
        raise ConfigError(f"{src_dir} is not a Hugging Face model folder (no config.json)")
    out_dir.mkdir(parents=True, exist_ok=True)
    for item in sorted(src_dir.iterdir()):
        target = out_dir / item.name
        if item.name in _TEMPLATE_FILES or not item.is_file():
            continue
        if target.is_symlink() or target.exists():
            target.unlink()
        if item.name in _CONFIGS_WITH_TEMPLATE:
            data = json.loads(item.read_text(encoding="utf-8"))
            data.pop("chat_template", None)
            target.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        else:
            target.symlink_to(item)
    for name in _TEMPLATE_FILES:
        (out_dir / name).unlink(missing_ok=True)
    (out_dir / "chat_template.jinja").write_text(template, encoding="utf-8")
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m recipe.srpo.chat_template",
        description="Check a model's chat template for SRPO; with --out, write a copy of the model with another one.",
    )
    parser.add_argument("--model", required=True, help="a local Hugging Face model folder")
    parser.add_argument("--out", help="write a folder of links to --model's files with the --template chat template")
    parser.add_argument("--template", choices=["qwen3vl-instruct"], default="qwen3vl-instruct",
                        help="the template --out gets (default: Qwen3-VL Instruct's)")
    args = parser.parse_args(argv)
    from transformers import AutoProcessor

    from srpo_data.offline.qwen3vl_templates import QWEN3_VL_CHAT_TEMPLATES

    model = args.model
    if args.out:
        model = str(write_with_template(args.model, args.out, QWEN3_VL_CHAT_TEMPLATES["instruct"]))
        print(f"wrote {model}: the files of {args.model} with the {args.template} chat template")
    try:
        print(f"OK {model}: {check_chat_template(AutoProcessor.from_pretrained(model))}")
    except ConfigError as exc:
        print(f"REFUSED {model}: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
