"""Training on a CPU with verl 0.9.1 and vLLM-CPU: a verl platform plugin and its patches.

Selected with ``VERL_PLATFORM=cpu`` (``examples/cpu_train.sh`` and ``CPU_TRAIN=1`` of
the run scripts set it); inactive otherwise.  See :mod:`recipe.srpo.cpu.plugin`.
"""
