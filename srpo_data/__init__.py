"""SRPO data, in three parts (each a subpackage; nothing is imported here):

- :mod:`srpo_data.rl`: the RL preprocessing. Public multimodal RL sets to verl 0.9.1 RL parquet
  with the SRPO prompt (``prepare_rl``, the per-source layouts in ``sources``, the shared row
  building in ``rows``, the input ``readers``, the verl-exact ``prompt_length``).
- :mod:`srpo_data.stage1`: stage 1, the reflection SFT data. The command (``build_reflections``),
  the builder it runs (``builder/``: config, inputs, client, store, steps, pipeline, outputs, run,
  the ``prompts/*.txt``) and the readers of the paper's stage-1 releases (``sources``).
- :mod:`srpo_data.offline`: what runs with no hub and no GPU. The tiny random-weight models
  (``tiny_qwen``, ``tiny_qwen3vl``, ``qwen3vl_templates``), the demo workspace (``demo``), the
  CPU learning and ablation tasks (``learn_task``, ``count_task``) and the scripted
  OpenAI-compatible server they and the tests use (``fake_endpoint``).

The two commands users script against keep their names: ``python -m srpo_data.prepare_rl``
and ``python -m srpo_data.build_reflections`` are thin entry modules over ``rl.prepare_rl``
and ``stage1.build_reflections``.
"""
