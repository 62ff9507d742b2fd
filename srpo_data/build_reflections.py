"""``python -m srpo_data.build_reflections``: stage 1's command, under its documented name.

The code lives in :mod:`srpo_data.stage1.build_reflections`; ``parse_args`` and
``config_from_args`` are re-exported for the dry run
(``python -m recipe.srpo.dry_run data --module srpo_data.build_reflections``).
"""

from srpo_data.stage1.build_reflections import config_from_args, main, parse_args

__all__ = ["config_from_args", "main", "parse_args"]

if __name__ == "__main__":
    raise SystemExit(main())
