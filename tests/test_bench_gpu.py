"""benchmarks/bench_gpu.py: the CPU smoke run walks the code paths the GPU run uses (tiny sizes, no GPU)."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "benchmarks" / "bench_gpu.py"
SECTIONS = ("env", "pytest", "convlstm", "ucrb", "conus", "ddp")
CPU_VARIANTS = ("vegviz fp32 eager", "vegviz bf16 autocast", "reference fp32 eager", "reference bf16 autocast",
                "reference pure bf16")
EPS32 = float.fromhex("0x1p-23")  # float32 machine epsilon (1.19e-7)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("bench_gpu") / "x.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--cpu-smoke", "--out", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "| section | case |" in proc.stdout  # the markdown table is printed
    assert out.with_suffix(".md").exists()
    return json.loads(out.read_text())


def fp32_bounds(config: dict) -> tuple[float, float]:
    """Relative bounds for two float32 implementations of the same ConvLSTM (outputs, gradients).

    Rounding errors of a float32 sum of n terms grow like eps32 * sqrt(n) relative to the
    magnitude of the terms (the probabilistic bound of Higham & Mary 2019, SIAM J. Sci. Comput.
    41(5); the worst case eps32 * n is far too loose). The reported errors are already relative
    to the largest baseline value, so the bound is k * eps32 * sqrt(n) with:

    * outputs: n = the gate convolution's fan-in (inputs + filters) * kernel^2, chained over
      the days of the recurrence, plus the head's sum over the filters;
    * gradients: n = every position (batch * days * lat * lon) summed into one weight's
      gradient, times the fan-out of the backward convolution (4 gates * filters * kernel^2);
    * k = 10: both implementations round, in different orders (oneDNN picks kernels per CPU:
      AVX2 on one machine, AVX-512 on another), and vegviz computes tanh as 2 sigmoid(2a) - 1
      (a few ulp per activation); the sigmoid derivatives multiply rather than add errors.

    A bf16 error (eps 2^-8 = 3.9e-3) exceeds these bounds by two orders of magnitude or more.
    """
    nlat, nlon = config["grid"]
    fan_in = (config["inputs"] + config["filters"]) * config["kernel"] ** 2
    n_y = fan_in * config["days"] + config["filters"]
    n_grad = max(config["batches"]) * config["days"] * nlat * nlon * 4 * config["filters"] * config["kernel"] ** 2
    k = 10
    return k * EPS32 * math.sqrt(n_y), k * EPS32 * math.sqrt(n_grad)


def test_sections_reported(smoke):
    sections = smoke["sections"]
    assert tuple(sections) == SECTIONS
    assert sections["env"]["status"] == "ok" and sections["convlstm"]["status"] == "ok"
    for name in ("pytest", "ucrb", "conus", "ddp"):  # nothing heavy in the smoke run
        assert sections[name]["status"] == "skipped", name
    assert smoke["failed"] == []


def test_cpu_variants_measured(smoke):
    rows = {r["variant"]: r for r in smoke["sections"]["convlstm"]["rows"]}
    for name in CPU_VARIANTS:
        r = rows[name]
        assert r["status"] == "ok", r
        for key in ("ms_per_day", "ms_per_chunk", "speedup", "aten_per_day"):
            assert r[key] is not None and math.isfinite(r[key]) and r[key] > 0, (name, key, r[key])
        for key, v in r["err"].items():
            assert v is not None and math.isfinite(v) and v >= 0, (name, key, v)
    for name, r in rows.items():  # compiled cells and CUDA graphs need CUDA
        if name not in CPU_VARIANTS:
            assert r["status"] == "skipped" and "no CUDA" in r["result"], r


def test_fp32_reference_agrees(smoke):
    section = smoke["sections"]["convlstm"]
    rows = {r["variant"]: r for r in section["rows"]}
    y_bound, grad_bound = fp32_bounds(section["config"])
    err = rows["reference fp32 eager"]["err"]
    assert err["y_rel"] <= y_bound, (err, y_bound)
    assert err["grad_rel"] <= grad_bound, (err, grad_bound)
    # bf16 gates do show: the measurement tells reduced precision from fp32
    assert rows["reference bf16 autocast"]["err"]["y_rel"] > y_bound
