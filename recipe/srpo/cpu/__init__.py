"""The CPU runs' own tools: the toy reward, the run verifiers (``verify_run``, ``verify_learning``).

verl's CPU platform and its patches, which verl loads as a plugin in every process, are in
:mod:`srpo_verl_plugins.cpu` (a package name no other project uses).
"""
