"""``python -m srpo_data.prepare_rl``: the RL preprocessor's command, under its documented name.

The code lives in :mod:`srpo_data.rl.prepare_rl`; ``build_parser`` is re-exported for the dry
run (``python -m recipe.srpo.dry_run data --module srpo_data.prepare_rl``).
"""

from srpo_data.rl.prepare_rl import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    raise SystemExit(main())
