"""verl plugins of the SRPO recipe, under a name no other project uses.

verl imports every ``verl.plugins`` entry point at ``import verl``, in the driver and in every Ray
worker (``verl/__init__.py:55-76``).  The two of this project (``pyproject.toml``) are here, not in
``recipe/``, because ``recipe`` is also the folder of a verl checkout's recipes and a package that
TransferQueue 0.1.11 installs: an entry point under that name would load or not depending on which
``recipe`` wins on ``sys.path``.  Importing this package does nothing.

- :mod:`srpo_verl_plugins.verl_fixes`: verl 0.9.1 bugs fixed on every platform;
- :mod:`srpo_verl_plugins.cpu`: verl's CPU platform and its patches (only with ``VERL_PLATFORM=cpu``).

Each fix is written for one release (:mod:`srpo_verl_plugins.versions`) and does nothing, saying
so in a log line, under any other.
"""
