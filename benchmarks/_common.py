"""Shared by the benchmark scripts: timing and peak memory, measured in one run."""

from __future__ import annotations

import statistics
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


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
"""The scripts' ``--clock`` choices: wall time, or the CPU seconds of the process."""


def interleaved(fns: dict, device: torch.device, repeat: int, warmup: int = 1, clock=None):
    """Wall time (s) of each of ``fns`` (name -> callable), called in turn ``repeat`` times.

    One round calls every function once, in order; rounds repeat, so that a machine that is
    busy for a while slows every function alike and the ratios of one round stay comparable.
    ``warmup`` untimed rounds come first. ``clock`` defaults to ``time.perf_counter``
    (``time.process_time``: CPU seconds of the process, for a shared machine).
    Returns ``{name: [seconds per round]}``.
    """
    clock = clock or time.perf_counter
    for _ in range(warmup):
        for f in fns.values():
            f()
    sync(device)
    out = {name: [] for name in fns}
    for _ in range(repeat):
        for name, f in fns.items():
            t0 = clock()
            f()
            sync(device)
            out[name].append(clock() - t0)
    return out


def ratio_stats(times: list, base: list) -> dict:
    """Per-round ratios ``times[r] / base[r]``: their median, min, max and all of them."""
    r = sorted(t / b for t, b in zip(times, base, strict=True))
    return {"median": statistics.median(r), "min": r[0], "max": r[-1], "all": r}


def verdict(what: str, value: float, target: float, stat: str = "median") -> bool:
    """Print one ``PASS``/``FAIL`` line: ``what`` (a ratio, its ``stat``) against ``<= target``."""
    ok = value <= target
    print(f"{'PASS' if ok else 'FAIL'}: {what}: {stat} {value:.2f}x (target <= {target:g}x)")
    return ok


def fresh_process(script: str, args: list) -> dict:
    """Run ``python script *args`` in a fresh process and return the JSON object it prints on
    its last line (peak memory on CPU is only honest in a fresh process: see
    :func:`peak_bytes`; timings in fresh processes see fresh memory, as a training job does)."""
    import json
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, script, *args], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def load_note(threads: int) -> str:
    """A line on the other jobs running now (``/proc/loadavg``'s runnable count, sampled for
    half a second, less this process). With other jobs running, threads that must meet at
    every operation wait for one another, and a loop of many small operations (Sinkhorn,
    chunked kernels) slows far more than a few large ones (cross-entropy)."""
    import os

    try:
        runs = []
        for _ in range(10):
            with open("/proc/loadavg") as f:
                runs.append(int(f.read().split()[3].split("/")[0]) - 1)
            time.sleep(0.05)
    except (OSError, ValueError, IndexError):
        return ""
    others, cores = sum(runs) / len(runs), os.cpu_count() or 1
    note = f"other runnable tasks: {others:.1f} on average (over 0.5 s) on {cores} cores"
    if threads > 1 and others >= 0.5:
        note += (
            f"; WARNING: with other jobs running, {threads}-thread timings of loops of small "
            "operations are unreliable: rerun on an idle machine, or with --threads 1 --clock cpu"
        )
    return note
