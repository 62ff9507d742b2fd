"""CPU dry run of the SRPO recipe: every stage checked with the arguments the real run would use.

The run scripts (``examples/run_qwen*_srpo.sh``) call this package instead of the
real command when ``DRY_RUN=1``, passing the very same argument list::

    python -m recipe.srpo.dry_run sft   [--rows N] -- <the SFT trainer's Hydra overrides>
    python -m recipe.srpo.dry_run merge            -- <verl.model_merger's arguments>
    python -m recipe.srpo.dry_run grpo  [--rows N] [--stand-in-model DIR] -- <main_srpo's Hydra overrides>
    python -m recipe.srpo.dry_run data  --module srpo_data.prepare_rl -- <the preprocessor's arguments>

Each check prints one line; the first failing check prints what to fix and the
process exits with status 1.  One module per stage, next to the checks it shares:

- :mod:`.sft`: the config composes (misspelled keys fail here); verl's config
  dataclasses build (model with its tokenizer and processor, engine, optimizer,
  checkpoint); the chat template renders the five-block target verbatim and prefills
  no format tag (:mod:`recipe.srpo.chat_template`; the Qwen3-VL Thinking template fails
  both); the batch divides the data-parallel size and the data has at least
  one batch; the memory knob in effect (dynamic batching: tokens per GPU); the vision
  freeze is installed through verl's ``external_lib`` hook and freezes the model's real
  layout (built on the meta device: no weights loaded); a few rows load through verl's
  SFT dataset with the processor (image tokens and pixel values checked) and their
  targets have the SRPO format.
- :mod:`.merge`: verl's model merger parses the arguments; an existing checkpoint has
  the files the merger reads.
- :mod:`.grpo`: compose; the legacy reward key is refused; verl's own
  ``validate_config`` (batch divisibility by the GPU count, micro-batch keys) plus
  the trainer's mini-batch and rollout-parallel arithmetic; verl's config
  dataclasses; the model and its chat template (as for SFT); ``data.image_patch_size`` is the
  processor's patch (verl says 14; Qwen3-VL has 16); verl's own overlong-prompt filter over the whole of both
  data files (a train file leaving less than one batch is refused); a few rows of each
  through verl's dataset class (the SRPO prompt applied, images reaching the processor);
  :mod:`.grpo_reward`: the reward weights, verl's reward-function loader and reward
  manager, a few synthetic rollouts scored through it and compared with direct
  ``compute_score`` calls, the filter metric present in the reward's output.
- :mod:`.data`: the preprocessor module is installed, accepts its arguments and its
  input files exist.

:mod:`.common` holds what they share (reporter, model, freeze, files, image tokens);
:mod:`recipe.srpo.compose` the Hydra composition.  What no CPU check can prove (vLLM
rollout, FSDP steps, memory, throughput) is listed at the end of the ``grpo`` and
``sft`` stages.
"""

from recipe.srpo.compose import CONFIG_DIR, GRPO_CONFIG, SFT_CONFIG, compose, override_key, suggest_key
from recipe.srpo.dry_run.cli import build_parser, main, run
from recipe.srpo.dry_run.common import DEFAULT_ROWS, GPU_ONLY, DryRunFailure, Reporter, quiet, step
from recipe.srpo.dry_run.data import dry_run_data
from recipe.srpo.dry_run.grpo import dry_run_grpo
from recipe.srpo.dry_run.grpo_reward import score_with_manager, synthetic_responses
from recipe.srpo.dry_run.merge import dry_run_merge
from recipe.srpo.dry_run.sft import dry_run_sft

__all__ = [
    "CONFIG_DIR",
    "DEFAULT_ROWS",
    "GPU_ONLY",
    "GRPO_CONFIG",
    "SFT_CONFIG",
    "DryRunFailure",
    "Reporter",
    "build_parser",
    "compose",
    "dry_run_data",
    "dry_run_grpo",
    "dry_run_merge",
    "dry_run_sft",
    "main",
    "override_key",
    "quiet",
    "run",
    "score_with_manager",
    "step",
    "suggest_key",
    "synthetic_responses",
]
