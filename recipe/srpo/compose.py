"""Hydra composition of the recipe's two configs, as verl's trainers compose them.

Used by the dry run, the tests, and the run scripts (which ask it for a composed value,
so the data stage sizes prompts with the very ``data.max_prompt_length`` the GRPO stage uses)::

    python -m recipe.srpo.compose srpo_trainer data.max_prompt_length -- <the GRPO stage's overrides>
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from recipe.srpo.checks import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent / "config"
GRPO_CONFIG = "srpo_trainer"
SFT_CONFIG = "srpo_sft"


def override_key(override: str) -> str:
    key = override.split("=", 1)[0]
    return key.lstrip("+~")


def suggest_key(base: DictConfig, key: str) -> str:
    """A hint for a key that is not in ``base``: the closest existing key under the same parent."""
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(base, parent) if parent else base
    if not isinstance(node, DictConfig):
        return ""
    close = difflib.get_close_matches(leaf, [str(k) for k in node.keys()], n=1)
    return f" Did you mean '{parent + '.' if parent else ''}{close[0]}'?" if close else ""


def compose(config_name: str, overrides: Sequence[str]) -> DictConfig:
    """Compose ``config_name`` from the recipe's config dir with ``overrides``, as the trainer would."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException

    def _compose(ovs: Sequence[str]) -> DictConfig:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None, job_name="srpo_dry_run"):
            return hydra_compose(config_name=config_name, overrides=list(ovs))

    try:
        return _compose(overrides)
    except HydraException as exc:
        base = _compose([])
        for ov in overrides:
            key = override_key(ov)
            if not ov.startswith("+") and OmegaConf.select(base, key, default="__missing__") == "__missing__":
                raise ConfigError(
                    f"override '{ov}': '{key}' is not a key of {config_name} (verl {_verl_version()} + SRPO)."
                    f"{suggest_key(base, key)} Fix the spelling (a key verl does not declare needs a leading '+')."
                ) from exc
        raise ConfigError(f"the overrides do not compose: {str(exc).splitlines()[0]}") from exc


def _verl_version() -> str:
    import verl

    return verl.__version__


def main(argv: Sequence[str] | None = None) -> int:
    """Print the composed value of one key: ``CONFIG KEY [-- OVERRIDES...]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    own, overrides = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    usage = f"usage: python -m recipe.srpo.compose {{{GRPO_CONFIG},{SFT_CONFIG}}} KEY [-- OVERRIDES...]"
    if own in (["-h"], ["--help"]):
        print(f"{usage}\n\n{main.__doc__}")
        return 0
    if len(own) != 2 or own[0] not in (GRPO_CONFIG, SFT_CONFIG):
        print(usage, file=sys.stderr)
        return 2
    config_name, key = own
    try:
        cfg = compose(config_name, overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    value = OmegaConf.select(cfg, key, default="__missing__")
    if value == "__missing__":
        print(f"error: '{key}' is not a key of {config_name}.{suggest_key(cfg, key)}", file=sys.stderr)
        return 1
    print(OmegaConf.to_yaml(value).strip() if isinstance(value, DictConfig) else value)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
