"""A CPU "platform" for verl 0.9.1, for tests only: verl's actor worker on a machine without a GPU.

Why this exists. verl has no CPU platform: its device falls back to "cuda" and its process group to
NCCL (``verl.plugin.platform``), so ``ActorRolloutRefWorker`` cannot start on a CPU-only machine.
The test of verl's own worker (``tests/verl/test_worker_cpu.py``) loads this module through verl's
plug-in mechanism (``VERL_USE_EXTERNAL_MODULES``) and selects it with ``VERL_PLATFORM=cpu``; the
worker then runs FSDP2 on a single-process gloo group. Nothing in ``scaled/`` imports it, and no
GPU run needs it. ``VERL_ENGINE_DEVICE=cuda`` keeps verl's engine registry (keyed by device) on the
FSDP engine it registers for CUDA, which runs unchanged on CPU tensors.
"""

from __future__ import annotations

import contextlib
from types import ModuleType
from typing import Any, Optional

import torch
from verl.plugin.platform.platform_base import PlatformBase
from verl.plugin.platform.platform_manager import PlatformRegistry


class _CpuDeviceModule(ModuleType):
    """The bits of ``torch.cuda`` verl calls through ``get_torch_device()``, as no-ops on CPU."""

    def __init__(self):
        super().__init__("empg_cpu_device")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        cpu = getattr(torch, "cpu", None)
        if cpu is not None and hasattr(cpu, name):
            return getattr(cpu, name)
        return lambda *args, **kwargs: None  # empty_cache, reset_peak_memory_stats, ...

    @staticmethod
    def is_available() -> bool:
        return True

    @staticmethod
    def device_count() -> int:
        return 1

    @staticmethod
    def get_device_name(*args, **kwargs) -> str:
        return "CPU"

    @staticmethod
    def current_device() -> str:
        return "cpu"

    @staticmethod
    def memory_allocated(*args, **kwargs) -> int:
        return 0

    max_memory_allocated = memory_reserved = max_memory_reserved = memory_allocated

    @staticmethod
    def mem_get_info(*args, **kwargs) -> tuple[int, int]:
        return (0, 0)

    @staticmethod
    def manual_seed(seed: int) -> None:
        torch.manual_seed(seed)

    manual_seed_all = manual_seed

    @staticmethod
    def get_rng_state(*args, **kwargs):
        return torch.get_rng_state()

    @staticmethod
    def set_rng_state(state, *args, **kwargs) -> None:
        torch.set_rng_state(state)


@PlatformRegistry.register(platform="cpu")
class PlatformCPU(PlatformBase):
    """Device ``cpu``, process group ``gloo``; everything accelerator-specific is a no-op."""

    _module = _CpuDeviceModule()

    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self) -> ModuleType:
        return self._module

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check=False) -> bool:
        return True

    def current_device(self) -> str:
        return "cpu"  # verl passes it to .to(device=...): the device itself, not an index

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index: int) -> None:
        pass

    def synchronize(self, device_index: Optional[int] = None) -> None:
        pass

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        pass

    def empty_cache(self) -> None:
        pass

    def get_device_capability(self, device_index: int = 0):
        return None, None

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        return "CUDA_VISIBLE_DEVICES"

    @contextlib.contextmanager
    def nvtx_range(self, msg: str):
        yield

    def profiler_start(self) -> None:
        pass

    def profiler_stop(self) -> None:
        pass

    def ray_resource_name(self) -> str:
        return "CPU"

    def ray_noset_envvars(self) -> list[str]:
        return []

    def is_ipc_supported(self) -> bool:
        return False

    def cudart(self) -> Any:
        return None
