"""Shared by the benchmark scripts: timing and peak memory, measured in one run."""

from __future__ import annotations

import time

import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timeit(fn, device: torch.device, repeat: int = 3, warmup: int = 1) -> float:
    """Best wall time of ``repeat`` calls of ``fn()`` in seconds, after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    sync(device)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({torch.get_num_threads()} torch threads)"


def _reset_hwm() -> bool:
    """Reset this process's resident-set high-water mark (Linux >= 4.0); False if impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as f:
        for row in f:
            if row.startswith(key + ":"):
                return int(row.split()[1])
    raise RuntimeError(f"/proc/self/status has no {key}")


def peak_bytes(run, device: torch.device) -> float:
    """Peak memory (bytes) that one call of ``run()`` adds on top of what is live before it.

    CUDA: ``torch.cuda.max_memory_allocated`` after a reset. CPU: the growth of the resident-set
    high-water mark (``VmHWM`` in ``/proc/self/status``, reset through ``/proc/self/clear_refs``;
    ``ru_maxrss`` where that is impossible). Call it in a fresh process for CPU figures: a child
    inherits its parent's ``ru_maxrss``, and freed memory of earlier cases would blur the mark.
    """
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        run()
        sync(device)
        return float(torch.cuda.max_memory_allocated(device) - base)
    if _reset_hwm():
        base = _status_kib("VmRSS")
        run()
        return float(_status_kib("VmHWM") - base) * 1024  # KiB -> B
    import resource

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # no /proc: the high-water mark
    run()
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024  # KiB -> B
