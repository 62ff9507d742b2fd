"""``python -m recipe.srpo.dry_run <stage> ...``: see :mod:`recipe.srpo.dry_run`."""

from recipe.srpo.dry_run.cli import main

main()
