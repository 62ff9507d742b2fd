"""The reward as a file, for verl releases that load ``custom_reward_function.path`` as a file.

verl releases whose loader predates ``pkg://`` (verl PR 4615, December 2025) execute the file that
``custom_reward_function.path`` names as a standalone module (``importlib.util.spec_from_file_location``),
outside its package, so ``srpo_reward/__init__.py`` fails there: its relative imports have no parent
package.  This file imports the installed package absolutely, so it loads either way (verl 0.9.1's
loader given its path is tested in ``tests/reward/test_verl_file.py``)::

    custom_reward_function.path=$(python -c "import srpo_reward.verl_file as f; print(f.__file__)")
    custom_reward_function.name=compute_score
"""

from srpo_reward import compute_score

__all__ = ["compute_score"]
