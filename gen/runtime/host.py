"""What this host is (a fingerprint for per-host plans) and how busy it was (for figures a user can trust).

A speed choice right on one CPU is wrong on another (AMX vs AVX-512 BF16 vs AVX2), so a plan is keyed
by the things that decide it: the CPU model and the instruction sets the kernels pick from, the cores
this process may use, and the versions of the runtimes that run the networks.

`LoadWatch` measures what *other* processes took of the CPU while something was timed: the whole
machine's busy time from /proc/stat minus this process's own CPU time. The load average cannot tell
a neighbour from ourselves; this can, and it also reads the hypervisor's steal time.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time

# instruction sets the CPU kernels of onnxruntime / OpenVINO / torch choose between
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni",
             "amx_tile", "amx_int8", "amx_bf16", "amx_fp16", "asimd", "sve")
RUNTIMES = ("onnxruntime", "onnxruntime-gpu", "openvino")  # what plans choose between (torch is not among them)
BUSY_CORES = 0.25  # other processes using more than a quarter of a core make timings unreliable here
MIN_WINDOW = 0.5  # seconds: /proc/stat counts in 10 ms ticks, too coarse to split a shorter window


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _cpuinfo() -> tuple[str, list[str]]:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model in ("", platform.processor(), platform.machine()):
                    model = value.strip()
                elif key in ("flags", "Features"):
                    flags.update(value.split())
    except OSError:
        pass
    return model, sorted(f for f in CPU_FLAGS if f in flags)


def int8_sums_saturate() -> bool:
    """Whether ONNX Runtime's u8s8 int8 kernels on this CPU add products in int16 pairs that can saturate:
    x86 without VNNI (AVX2, AVX-512F/BW). ORT's quantization docs advise 7-bit weights (`reduce_range`)
    there; measured on an AVX2 EPYC, a Stable Diffusion UNet's int8 call went from 13 to 25 dB SQNR."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    return not {"avx512_vnni", "avx_vnni", "amx_int8"} & set(_cpuinfo()[1])


def fingerprint() -> dict:
    """The facts a per-host plan depends on, and `id`, a short hash of them."""
    from gen.versions import versions

    model, flags = _cpuinfo()
    facts = {"cpu": model, "machine": platform.machine(), "cpu_flags": flags, "cores": usable_cores(),
             "runtimes": {k: v for k, v in versions(RUNTIMES).items() if v}}
    facts["id"] = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:12]
    return facts


def differences(mine: dict, theirs: dict) -> list[str]:
    """What differs between two fingerprints, in words (for the message that ignores a foreign plan)."""
    out = []
    for key in ("cpu", "machine", "cpu_flags", "cores", "runtimes"):
        if mine.get(key) != theirs.get(key):
            out.append(f"{key} {theirs.get(key)!r} there, {mine.get(key)!r} here")
    return out


def _cpu_times() -> tuple[float, float, float] | None:
    """(busy, steal, total) seconds of all CPUs since boot, from /proc/stat; None where unreadable."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    busy = user + nice + system + irq + softirq
    return busy / tick, steal / tick, (busy + idle + iowait + steal) / tick


def _mhz() -> float | None:
    try:
        with open("/proc/cpuinfo") as f:
            values = [float(line.split(":")[1]) for line in f if line.startswith("cpu MHz")]
        return round(sum(values) / len(values), 1) if values else None
    except (OSError, ValueError):
        return None


class LoadWatch:
    """Use as a context manager around timed work; `figures` then says how busy the rest of the host was."""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self) -> "LoadWatch":
        self._t0, self._cpu0, self._own0 = time.monotonic(), _cpu_times(), _own_cpu()
        self._before = {"loadavg": _loadavg(), "cpu_mhz": _mhz()}
        self.figures: dict = {}
        return self

    def stop(self) -> dict:
        wall = time.monotonic() - self._t0
        cpu1, own = _cpu_times(), _own_cpu() - self._own0
        figures = {"seconds": round(wall, 2), "usable_cores": usable_cores(), "before": self._before,
                   "after": {"loadavg": _loadavg(), "cpu_mhz": _mhz()}}
        if self._cpu0 and cpu1 and wall >= MIN_WINDOW:
            busy, steal, total = (b - a for a, b in zip(self._cpu0, cpu1))
            figures["others_cores"] = round(max(0.0, busy - own) / wall, 3)  # cores' worth other processes used
            figures["steal_fraction"] = round(steal / total, 4) if total > 0 else 0.0
        figures["busy"] = busy_reason(figures)
        self.figures = figures
        return figures


def busy_reason(figures: dict) -> str | None:
    """Why timings taken under these figures are not to be trusted, or None when the host was quiet."""
    others, steal = figures.get("others_cores"), figures.get("steal_fraction") or 0
    if others is not None and others > BUSY_CORES:
        return (f"other processes used {others:.2f} cores while this was timed (of {figures['usable_cores']}); "
                "ratios are unreliable: re-run on idle cores")
    if steal > 0.05:
        return f"the hypervisor took {100 * steal:.0f}% of the CPU (steal); re-run when the host is quieter"
    if others is None:  # too short a window to split: the load average (ours included) must say it
        load = (figures.get("before") or {}).get("loadavg")
        if load and load[0] > figures["usable_cores"] + 1:
            return f"load average {load[0]:.2f} on {figures['usable_cores']} cores; ratios are unreliable"
    return None


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None
