"""verl plugin entry point (``[project.entry-points."verl.plugins"] srpo_cpu``).

verl imports every ``verl.plugins`` entry point at ``import verl``
(``verl/__init__.py:55-76``), in the driver and in every Ray worker.  This module
does nothing unless ``VERL_PLATFORM=cpu``: then it registers the CPU platform
(:mod:`recipe.srpo.cpu.platform`) and applies :mod:`recipe.srpo.cpu.patches`.
verl swallows a plugin's import error at debug level, so a failure here is logged
as a warning before it propagates.
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)


def cpu_selected(environ: dict[str, str] | None = None) -> bool:
    """True if the CPU platform was chosen (``VERL_PLATFORM=cpu``)."""
    environ = os.environ if environ is None else environ
    return environ.get("VERL_PLATFORM", "").strip().lower() == "cpu"


def activate() -> dict[str, bool]:
    """Register the CPU platform with verl and apply the CPU patches."""
    from recipe.srpo.cpu import patches, platform  # noqa: F401  (platform registers itself)

    return patches.apply_all()


if cpu_selected():
    try:
        activate()
    except Exception:
        logger.warning("srpo: VERL_PLATFORM=cpu but the CPU platform failed to load", exc_info=True)
        raise
