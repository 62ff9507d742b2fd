"""verl plugin entry point (``[project.entry-points."verl.plugins"] srpo_cpu``).

verl imports every ``verl.plugins`` entry point at ``import verl``
(``verl/__init__.py:55-76``), in the driver and in every Ray worker.  This module
does nothing unless ``VERL_PLATFORM=cpu``: then, under verl 0.9.1 (the release the platform and
its patches were written for; under any other one warning says nothing is applied), it registers the
CPU platform (:mod:`srpo_verl_plugins.cpu.platform`) and applies :mod:`srpo_verl_plugins.cpu.patches`.
verl swallows a plugin's import error at debug level, so a failure here is logged
as a warning before it propagates.
"""

from __future__ import annotations

import logging
import os

from srpo_verl_plugins.versions import VERL_RELEASE, written_for

logger = logging.getLogger(__name__)


def cpu_selected(environ: dict[str, str] | None = None) -> bool:
    """True if the CPU platform was chosen (``VERL_PLATFORM=cpu``)."""
    environ = os.environ if environ is None else environ
    return environ.get("VERL_PLATFORM", "").strip().lower() == "cpu"


def activate(verl_version: str | None = None) -> dict[str, bool]:
    """Register the CPU platform with verl and apply the CPU patches; ``{}`` (nothing done) under a
    verl release they were not written for.  ``verl_version`` stands for the running one (tests)."""
    if not written_for("the CPU platform and its patches (srpo_verl_plugins.cpu)", "verl", VERL_RELEASE,
                       found=verl_version):
        return {}
    from srpo_verl_plugins.cpu import patches, platform  # noqa: F401  (platform registers itself)

    return patches.apply_all()


if cpu_selected():
    try:
        activate()
    except Exception:
        logger.warning("srpo: VERL_PLATFORM=cpu but the CPU platform failed to load", exc_info=True)
        raise
