"""The recipe-wide fixes of verl 0.9.1 bugs (srpo_verl_plugins/verl_fixes.py), on every platform.

Run outside ``VERL_PLATFORM=cpu``: these fixes are not CPU patches.  Each is checked on verl's own
function, first failing as upstream ships it (``SRPO_VERL_FIXES=0``), then passing with the fix that
the recipe's ``verl.plugins`` entry point installs at ``import verl``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

from srpo_verl_plugins import verl_fixes


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k not in {"VERL_PLATFORM", "VERL_ENGINE_DEVICE", "SRPO_VERL_FIXES"}}
    full.update(env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full, capture_output=True, text=True,
                          timeout=300)


# An equal-length batch of Qwen2.5-VL 3-D position ids, as verl builds it (torch's default jagged layout),
# through the code a GPU worker runs before every forward: engine_workers.py:252 (maybe_fix_3d_position_ids,
# bound by name in that module) then tensordict_utils.index_select_tensor_dict (the micro-batch split).
EQUAL_LENGTH_BATCH = """
    import torch, verl
    from tensordict import TensorDict
    import verl.utils.tensordict_utils as tu
    import verl.workers.engine_workers as ew
    rows = [torch.arange(4 * 5).reshape(4, 5) for _ in range(3)]
    batch = TensorDict({"position_ids": torch.nested.as_nested_tensor(rows, layout=torch.jagged)}, batch_size=[3])
    ew.maybe_fix_3d_position_ids(batch)
    out = tu.index_select_tensor_dict(batch, [2, 0])["position_ids"].unbind()
    print("shapes", [tuple(r.shape) for r in out])
"""


def test_verls_position_ids_fix_crashes_on_equal_length_batches_without_the_recipe():
    proc = run_python(EQUAL_LENGTH_BATCH, SRPO_VERL_FIXES="0")
    assert proc.returncode == 1, proc.stdout + proc.stderr[-2000:]
    # torch 2.13 words it "Expected cond to be True" (older: "split_with_sizes expects split_sizes to sum
    # exactly to ..."); either way a RuntimeError raised while verl indexes the batch.
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("RuntimeError:") and "index_select_tensor_dict" in proc.stderr, proc.stderr[-2000:]


def test_position_ids_fix_applies_without_the_cpu_platform():
    proc = run_python(EQUAL_LENGTH_BATCH)  # no VERL_PLATFORM: what a GPU run has
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "shapes [(4, 5), (4, 5)]"


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
