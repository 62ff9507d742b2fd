"""The recipe-wide fixes of verl 0.9.1 bugs (srpo_verl_plugins/verl_fixes.py), on every platform.

Run outside ``VERL_PLATFORM=cpu``: these fixes are not CPU patches.  Each is checked on verl's own
function, first failing as upstream ships it (``SRPO_VERL_FIXES=0``), then passing with the fix that
the recipe's ``verl.plugins`` entry point installs at ``import verl``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from srpo_verl_plugins import verl_fixes
from srpo_verl_plugins.versions import release


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k not in {"VERL_PLATFORM", "VERL_ENGINE_DEVICE", "SRPO_VERL_FIXES"}}
    full.update(env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full, capture_output=True, text=True,
                          timeout=300)


# Two batches of Qwen2.5-VL 3-D position ids through the code a GPU worker runs before every forward:
# engine_workers.py:252 (maybe_fix_3d_position_ids, bound by name in that module) then
# tensordict_utils.index_select_tensor_dict (the micro-batch split).  "equal": every sequence has one length
# (torch's default jagged layout, ragged at index 1), which verl's own fix breaks; "lost": lengths differ and
# the ragged index was lost (as after TensorDict pickling), which verl's fix repairs and a no-op would not.
POSITION_IDS_BATCHES = """
    import torch, verl
    from tensordict import TensorDict
    import verl.utils.tensordict_utils as tu
    import verl.workers.engine_workers as ew

    def split(pos):
        batch = TensorDict({"position_ids": pos}, batch_size=[pos.size(0)])
        ew.maybe_fix_3d_position_ids(batch)
        try:
            return [tuple(r.shape) for r in tu.index_select_tensor_dict(batch, [2, 0])["position_ids"].unbind()]
        except RuntimeError as exc:
            return f"RuntimeError in index_select_tensor_dict: {str(exc)[:200]}"

    equal = torch.nested.as_nested_tensor([torch.arange(20).reshape(4, 5) for _ in range(3)], layout=torch.jagged)
    lost = tu.nested_tensor_from_tensor_list([torch.arange(4 * n).reshape(4, n) for n in (5, 7, 6)], ragged_idx=2)
    lost._ragged_idx = 1
    print("equal", split(equal))
    print("lost", split(lost))
"""


def position_ids_results(**env: str) -> dict[str, str]:
    proc = run_python(POSITION_IDS_BATCHES, **env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(line.split(" ", 1) for line in proc.stdout.strip().splitlines()[-2:])


def test_verls_position_ids_fix_crashes_on_equal_length_batches_without_the_recipe():
    got = position_ids_results(SRPO_VERL_FIXES="0")
    # torch 2.13 words it "Expected cond to be True" (older: "split_with_sizes expects split_sizes to sum
    # exactly to ..."); either way a RuntimeError raised while verl indexes the batch.
    assert got["equal"].startswith("RuntimeError in index_select_tensor_dict"), got
    assert got["lost"] == "[(4, 6), (4, 5)]", got  # the case verl's own fix is for


def test_position_ids_fix_applies_without_the_cpu_platform():
    """No VERL_PLATFORM (what a GPU run has): both batches index, so the fix is neither verl's nor a no-op."""
    assert position_ids_results() == {"equal": "[(4, 5), (4, 5)]", "lost": "[(4, 6), (4, 5)]"}


def test_position_ids_fix_rebinds_every_verl_module_that_imported_it():
    code = """
        import verl
        import verl.utils.tensordict_utils as tu, verl.workers.engine_workers as ew, verl.workers.engine.base as eb
        from srpo_verl_plugins.verl_fixes import fix_3d_position_ids
        print(all(m.maybe_fix_3d_position_ids is fix_3d_position_ids for m in (tu, ew, eb)))
    """
    for env in ({}, {"VERL_PLATFORM": "cpu"}):
        assert run_python(code, **env).stdout.strip().splitlines()[-1] == "True", env
    assert run_python(code, SRPO_VERL_FIXES="0").stdout.strip().splitlines()[-1] == "False"


def position_ids_batch(lengths, ragged_idx=None):
    """A verl batch whose position_ids are jagged (batch, 4, seq) tensors, as verl builds them."""
    from tensordict import TensorDict
    from verl.utils.tensordict_utils import nested_tensor_from_tensor_list

    rows = [torch.arange(4 * n).reshape(4, n) for n in lengths]
    if len(set(lengths)) == 1:  # equal lengths: torch's default jagged layout, ragged at index 1
        pos = torch.nested.as_nested_tensor(rows, layout=torch.jagged)
    else:
        pos = nested_tensor_from_tensor_list(rows, ragged_idx=2)
    if ragged_idx is not None:
        pos._ragged_idx = ragged_idx  # as after the pickling that loses it
    return TensorDict({"position_ids": pos}, batch_size=[len(lengths)])


@pytest.mark.parametrize(("lengths", "lost"), [([5, 5, 5], None), ([5, 7, 6], None), ([5, 7, 6], 1)])
def test_fixed_position_ids_index_in_every_layout(lengths, lost):
    import verl.utils.tensordict_utils as tu

    batch = position_ids_batch(lengths, ragged_idx=lost)
    verl_fixes.fix_3d_position_ids(batch)
    rows = tu.index_select_tensor_dict(batch, [2, 0])["position_ids"].unbind()
    assert [tuple(r.shape) for r in rows] == [(4, lengths[2]), (4, lengths[0])]
    assert torch.equal(rows[1], torch.arange(4 * lengths[0]).reshape(4, lengths[0]))


def test_fixes_can_be_turned_off():
    assert verl_fixes.enabled({}) and verl_fixes.enabled({"SRPO_VERL_FIXES": "1"})
    assert not verl_fixes.enabled({"SRPO_VERL_FIXES": "0"}) and not verl_fixes.enabled({"SRPO_VERL_FIXES": "off"})


# ------------------------------------------------------------------ outside the release they were written for
# A verl that says it is another release: a stand-in package found before the real one (PYTHONPATH), which
# sets __version__, serves the real verl's submodules (its __path__ ends with the real package) and loads
# the verl.plugins entry points as verl does at import.  Everything the plugins would change is then read
# back: import hooks, torch's init_process_group, the environment.
FAKE_VERL = """
__version__ = {version!r}
__path__.append({real!r})
from importlib.metadata import entry_points
for ep in entry_points(group="verl.plugins"):
    if ep.name.startswith("srpo"):
        ep.load()
"""
PLUGIN_EFFECTS = """
    import logging, os, sys
    logging.basicConfig(level=logging.WARNING, format="%(name)s %(message)s")
    import torch.distributed as dist
    import verl
    print("hooks", sum(type(f).__name__ == "_AfterImport" for f in sys.meta_path))
    print("pg", getattr(dist.init_process_group, "_srpo_cpu_patched", False))
    print("env", os.environ.get("VERL_ENGINE_DEVICE"), os.environ.get("VLLM_TARGET_DEVICE"))
"""


def plugin_effects(tmp_path, version, **env):
    fake = tmp_path / "fake"
    (fake / "verl").mkdir(parents=True)
    real = os.path.dirname(importlib.util.find_spec("verl").origin)
    (fake / "verl" / "__init__.py").write_text(FAKE_VERL.format(version=version, real=real))
    full = {"PYTHONPATH": str(fake), **env}
    full.pop("VLLM_TARGET_DEVICE", None)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(PLUGIN_EFFECTS)], capture_output=True, text=True,
                          timeout=300, env={**{k: v for k, v in os.environ.items() if k not in
                                               {"VERL_PLATFORM", "VERL_ENGINE_DEVICE", "SRPO_VERL_FIXES",
                                                "VLLM_TARGET_DEVICE", "PYTHONPATH"}}, **full})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(line.split(" ", 1) for line in proc.stdout.strip().splitlines()[-3:]), proc.stderr


@pytest.mark.parametrize("platform", [{}, {"VERL_PLATFORM": "cpu"}], ids=["gpu-like", "cpu-platform"])
def test_plugins_change_nothing_under_another_verl(tmp_path, platform):
    got, log = plugin_effects(tmp_path, "0.10.0", **platform)
    assert got == {"hooks": "0", "pg": "False", "env": "None None"}, (got, log)
    assert "srpo: the verl fixes of srpo_verl_plugins.verl_fixes: written for verl 0.9.1, this is verl 0.10.0; " \
           "not applied" in log, log
    if platform:
        assert "srpo: the CPU platform and its patches (srpo_verl_plugins.cpu): written for verl 0.9.1, this is " \
               "verl 0.10.0; not applied" in log, log


@pytest.mark.parametrize("platform", [{}, {"VERL_PLATFORM": "cpu"}], ids=["gpu-like", "cpu-platform"])
def test_plugins_apply_under_the_verl_they_were_written_for(tmp_path, platform):
    """The same stand-in saying 0.9.1 (a local build, as a checkout may report it): every fix is installed."""
    got, log = plugin_effects(tmp_path, "0.9.1+local", **platform)
    hooks, fix_hooks = int(got["hooks"]), len(verl_fixes.POSITION_IDS_FIX_USERS)
    assert (hooks > fix_hooks) if platform else (hooks == fix_hooks), (got, log)  # the CPU patches add theirs
    assert got["pg"] == str(bool(platform)) and got["env"] == ("cuda cpu" if platform else "None None"), got
    assert "not applied" not in log, log


def test_fixes_install_only_under_verl_091(caplog):
    caplog.set_level(logging.WARNING, logger="srpo_verl_plugins.versions")
    assert not verl_fixes.install(verl_version="0.10.0")
    assert "written for verl 0.9.1, this is verl 0.10.0; not applied" in caplog.text
    assert verl_fixes.install(verl_version="0.9.1")
    assert not verl_fixes.install(verl_version="0.9.1", environ={"SRPO_VERL_FIXES": "0"})


@pytest.mark.parametrize(("version", "expected"), [("0.28.0+cpu", "0.28.0"), ("0.9.1", "0.9.1"),
                                                   ("0.9.1.dev0", "0.9.1"), ("0.10.0rc1", "0.10.0")])
def test_release_of_a_build(version, expected):
    assert release(version) == expected
