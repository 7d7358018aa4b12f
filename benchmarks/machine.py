"""What the benchmarks print about the machine they ran on (one home for it)."""
from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; elsewhere what ``platform`` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def load_average() -> float:
    """The 1-minute load average (NaN where the OS has none): other processes slow every timing."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def describe(load_before: float, load_after: float) -> dict:
    """The machine fields of a benchmark's JSON result."""
    return {"cpu": cpu_model(), "cpus": os.cpu_count(),
            "loadavg_1min_before_after": [round(load_before, 2), round(load_after, 2)]}
