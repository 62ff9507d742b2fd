"""Evaluation of SRPO checkpoints and the reflection report.

Three command lines, each a thin wrapper over pure functions in this package:

- ``python -m srpo_eval.convert``: MathVista testmini, MathVerse testmini,
  MathVision test and MMMU-Pro (local copies of their public releases) to verl
  RL parquet with the SRPO format prompt (:mod:`srpo_eval.benchmarks`).
- ``python -m srpo_eval.generate``: greedy rollouts with vLLM (GPU) or
  transformers (CPU), or the import of rollouts the user already has
  (:mod:`srpo_eval.rollouts`).
- ``python -m srpo_eval.report``: accuracy by each benchmark's official rule
  (:mod:`srpo_eval.official`) laid out like the paper's Table 1, with intervals
  and a paired test of two runs (:mod:`srpo_eval.stats`), the reflection
  transition matrix, fix and harm rates, format failures and lengths, as JSON,
  Markdown and PNG (:mod:`srpo_eval.scoring`, :mod:`srpo_eval.summary`,
  :mod:`srpo_eval.plots`); optionally with a judge that extracts answers of
  untagged responses (:mod:`srpo_eval.judge`).

Nothing is imported or loaded at import time.
"""
