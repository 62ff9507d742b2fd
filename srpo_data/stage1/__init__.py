"""Stage 1 of SRPO: the reflection SFT data, built with a policy and a teacher endpoint.

Modules: ``build_reflections`` (the command, run as ``python -m srpo_data.build_reflections``),
``builder/`` (the builder itself: see its docstring) and ``sources`` (readers of the paper's
stage-1 releases in their published layouts, ``python -m srpo_data.stage1.sources``).
"""
