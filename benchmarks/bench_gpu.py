"""Benchmark vegviz on a CUDA GPU: one prepared command that runs in minutes (issue 14, section 4).

    python benchmarks/bench_gpu.py                                  # on a GPU node: at most 8 min (--budget)
    python benchmarks/bench_gpu.py --conus-store /data/conus-2001-2004.zarr --out results/bench_gpu.json
    python benchmarks/bench_gpu.py --sections convlstm,ucrb          # a subset (names below)
    python benchmarks/bench_gpu.py --cpu-smoke                      # the code paths only: tiny, CPU, ~20 s

Sections (each runs on its own: a failure becomes an entry of its rows with the error, and the
script goes on; the exit status is 1 when any section failed):

1. ``env``: the GPU(s) by name, driver, torch, CUDA and cuDNN versions, the TF32 switches, the CPU.
2. ``pytest``: ``pytest -m gpu -q`` over the test files that mention gpu or cuda (only they can
   hold the mark; collecting the whole suite would cost half a minute); no such test is reported.
3. ``convlstm``: forward + backward of an MSE loss over one 60-day chunk (truncated BPTT's unit) at
   the study scale (batch 2 and 8, 63 x 54 cells, 7 inputs, 16 filters, 3 x 3 kernel), for
   ``vegviz.models.ConvLSTM`` eager in fp32 and under bf16 autocast; the single-convolution
   reference of ``benchmarks/bench_convlstm.py`` eager in fp32, under bf16 autocast (gates in bf16,
   the state in fp32: bf16 * fp32 promotes) and all in bf16 (the state too); the reference loop
   with its cell step under ``torch.compile``; and whole chunks (forward, loss and backward)
   captured as CUDA graphs with static buffers. Per variant: milliseconds per day (median over
   repeats after warm-up, CUDA events), the speed-up over vegviz fp32 eager, the warm-up
   (compilation, capture) time, aten calls and CUDA kernels per day (torch.profiler, one chunk:
   the per-day loop is launch-bound), and the largest absolute and relative (to the largest
   value) differences of the outputs and of the parameter gradients from vegviz fp32 eager
   with TF32 off (exact fp32; the fp32 rows then show what TF32 changes).
4. ``ucrb``: ``python -m vegviz train --domain ucrb --epochs 1 --device cuda`` in a subprocess for
   precision fp32 and bf16; the epoch time is the ``seconds`` of the run's ``history.csv``,
   against the 5 s target; also the process's wall time (start-up, validation, predictions) and
   the peak GPU memory (nvidia-smi, sampled). The virtual UCRB is built first (timed on its own).
5. ``conus``: an epoch on CONUS-sized data with 64 x 64 training patches, 2001-2002 training,
   2003 validation, 2004 test, in bf16 (``--conus-precisions``: each CONUS run takes minutes).
   ``--conus-store`` gives a prebuilt Zarr store; otherwise a 4-year virtual CONUS store
   (2001-2004) is built into the work directory (about 6 minutes on 2 cores; its time is in the
   table); that build needs the CONUS static fields cached in the data directory or buildable.
6. ``ddp``: with 2+ GPUs, the UCRB epoch under ``torchrun --standalone --nproc_per_node 2``.

The sections run in the order env, pytest, ucrb, ddp, convlstm, conus. The data builds start in
the background at nice 10 when the script starts, so that they overlap the other sections
(``--serial-builds``: each right before its section, for timings undisturbed by them).
``--budget`` bounds the whole run: a section that would start after it is skipped, subprocesses
are stopped at it.

It prints one markdown table, headed by the GPU's name, and writes the results as JSON to
``--out`` (default ``$OUT/bench_gpu.json`` when ``OUT`` is set, else ``./bench_gpu.json``; the
markdown goes next to it as ``.md``, subprocess logs into ``<out>_logs/``). The JSON is
rewritten after every section, so a run cut short keeps what it measured.

Once it has run on a GPU node, its table belongs in the README (section "Benchmarks"), with
the GPU named, as the measured answer to the 5 s full-UCRB epoch target.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

# the reference ConvLSTM lives next to this script (imported before torch: it sets
# OMP_WAIT_POLICY, which matters on the shared cores of the --cpu-smoke runs)
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_convlstm import StraightforwardConvLSTM, grads  # noqa: E402

import argparse  # noqa: E402
import copy  # noqa: E402
import csv  # noqa: E402
import datetime as dt  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from contextlib import contextmanager, nullcontext  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from vegviz.grid import UCRB  # noqa: E402
from vegviz.models import ConvLSTM, ConvLSTMCell  # noqa: E402
from machine import cpu_model  # noqa: E402  (benchmarks/machine.py)

REPO = Path(__file__).resolve().parent.parent
TARGET_EPOCH_S = 5.0
SECTIONS = ("env", "pytest", "convlstm", "ucrb", "conus", "ddp")
TITLES = {"env": "1 environment", "pytest": "2 pytest -m gpu", "convlstm": "3 ConvLSTM step",
          "ucrb": "4 UCRB epoch", "conus": "5 CONUS-patch epoch", "ddp": "6 DDP 2 GPUs"}
#: seconds a section may take at most (within the global --budget): one slow section leaves time to the others
SECTION_CAP_S = {"env": 30, "pytest": 120, "convlstm": 180, "ucrb": 300, "conus": 360, "ddp": 150}
CONUS_PERIODS = ("periods.train=[2001-01-01,2002-12-31]", "periods.validation=[2003-01-01,2003-12-31]",
                 "periods.test=[2004-01-01,2004-12-31]")
UCRB_BUILD = "from vegviz.catalog import open_data; open_data('virtual_ucrb')"
CONUS_BUILD = ("import sys; from vegviz.data.static import static_for; from vegviz.data.virtual import build_store; "
               "build_store(sys.argv[1], '2001-01-01', '2004-12-31', seed=42, static=static_for('conus', None))")


class Skip(Exception):
    """A section (or variant) that cannot run here: reported as skipped, not as a failure."""


# ---------------------------------------------------------------------------------------------
# bookkeeping: deadlines, subprocesses, background builds, GPU memory


class Context:
    """What the sections share: options, device, deadlines, work and log folders, background builds."""

    def __init__(self, args):
        self.args = args
        self.t0 = time.perf_counter()
        self.deadline = self.t0 + args.budget
        self.section_end = self.deadline
        self.cuda = torch.cuda.is_available() and not args.cpu_smoke
        self.device = torch.device("cuda" if self.cuda else "cpu")
        self.out = Path(args.out)
        self.logs = self.out.parent / (self.out.stem + "_logs")
        self.own_work = args.work_dir is None
        self.work = Path(args.work_dir or tempfile.mkdtemp(prefix="vegviz-bench-gpu-"))
        self.builds: dict[str, Background] = {}
        self.results: dict = {}

    def remaining(self) -> float:
        return self.section_end - time.perf_counter()

    def log(self, name: str) -> Path:
        self.logs.mkdir(parents=True, exist_ok=True)
        return self.logs / f"{name}.log"


def run_logged(cmd, log: Path, timeout: float, env=None) -> tuple[int | None, float]:
    """Run ``cmd`` (stdout and stderr into ``log``); its exit code (None after ``timeout``) and wall seconds."""
    with open(log, "w") as f:
        f.write("$ " + " ".join(map(str, cmd)) + "\n")
        f.flush()
        t = time.perf_counter()
        # own session: a timeout stops the whole tree it started (e.g. torchrun's workers)
        p = subprocess.Popen(list(map(str, cmd)), stdout=f, stderr=subprocess.STDOUT, cwd=REPO, env=env,
                             start_new_session=True)
        try:
            rc = p.wait(timeout=max(timeout, 1))
        except subprocess.TimeoutExpired:
            rc = None
        finally:  # a timeout, or this script stopped: nothing it started runs on
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    return rc, time.perf_counter() - t


def tail(log: Path, n: int = 1500) -> str:
    try:
        return log.read_text(errors="replace")[-n:]
    except OSError:
        return ""


class Failed(RuntimeError):
    """A subprocess that failed: ``problem`` (exit code, timeout), ``why`` its log's last line, ``log``."""

    def __init__(self, label: str, problem: str, log: Path):
        lines = [line for line in tail(log).splitlines() if line.strip()]
        self.problem, self.why, self.log = problem, (lines[-1].strip() if lines else ""), log
        super().__init__(f"{label}: {problem}: {self.why} (log {log})")


class Background:
    """A data build running in the background at nice 10; ``wait`` gives its exit code and wall seconds."""

    def __init__(self, cmd, log: Path):
        self.cmd, self.log = cmd, log
        self.f = open(log, "w")
        self.f.write("$ " + " ".join(map(str, cmd)) + "\n")
        self.f.flush()
        self.t = time.perf_counter()
        self.seconds = None
        self.p = subprocess.Popen(list(map(str, cmd)), stdout=self.f, stderr=subprocess.STDOUT, cwd=REPO,
                                  preexec_fn=lambda: os.nice(10), start_new_session=True)
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self):
        self.p.wait()
        self.seconds = time.perf_counter() - self.t

    def wait(self, timeout: float) -> tuple[int, float]:
        try:
            self.p.wait(timeout=max(timeout, 1))
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"the build was still running at the time budget ({self.log})") from None
        while self.seconds is None:  # the watcher records the exit time
            time.sleep(0.01)
        self.f.close()
        return self.p.returncode, self.seconds

    def stop(self):
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGKILL)
            self.p.wait()


class GpuMemory:
    """Peak of nvidia-smi's memory.used (MiB, all GPUs summed) while a subprocess runs, above the level before."""

    def __init__(self, period: float = 0.25):
        self.period, self.peak, self.base = period, None, None
        self._stop = threading.Event()

    @staticmethod
    def used() -> int | None:
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True, timeout=5).stdout
            return sum(int(v) for v in out.split())
        except (OSError, ValueError, subprocess.SubprocessError):
            return None

    def _sample(self):
        while not self._stop.wait(self.period):
            used = self.used()
            if used is not None:
                self.peak = max(self.peak or 0, used)

    def __enter__(self):
        if torch.cuda.is_available():
            torch.cuda.empty_cache()  # this process's cached blocks would count against the subprocess
        self.base = self.used()
        if self.base is not None:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self.base is not None:
            self._thread.join()

    @property
    def mib(self) -> int | None:
        return None if self.base is None or self.peak is None else max(self.peak - self.base, 0)


def row(case: str, result: str = "", compared: str = "", error: str = "", notes: str = "", **raw) -> dict:
    return {"case": case, "result": result, "compared": compared, "error": error, "notes": notes, **raw}


# ---------------------------------------------------------------------------------------------
# 1. environment


def nvidia_smi(query: str) -> list[str]:
    try:
        out = subprocess.run(["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10).stdout
        return [line.strip() for line in out.splitlines() if line.strip()]
    except (OSError, subprocess.SubprocessError):
        return []



def section_env(ctx) -> dict:
    rows, gpus = [], []
    if torch.cuda.is_available():
        for k in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(k)
            gpus.append(p.name)
            rows.append(row(f"GPU {k}", p.name, notes=f"compute capability {p.major}.{p.minor}, "
                                                       f"{p.total_memory / 2**30:.1f} GiB"))
        drivers = nvidia_smi("driver_version")
        if drivers:
            rows.append(row("NVIDIA driver", drivers[0]))
    else:
        rows.append(row("GPU", "none (torch.cuda.is_available() is False)"))
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    rows.append(row("torch", torch.__version__, notes=f"CUDA {torch.version.cuda}, cuDNN {cudnn}, "
                                                      f"Python {platform.python_version()}"))
    tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    rows.append(row("TF32", notes=f"cudnn.allow_tf32={tf32[0]} (fp32 convolutions run in TF32 unless off), "
                                  f"cuda.matmul.allow_tf32={tf32[1]}"))
    rows.append(row("CPU", cpu_model(), notes=f"{os.cpu_count()} CPUs visible, {torch.get_num_threads()} threads"))
    return {"rows": rows, "gpus": gpus, "torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": cudnn,
            "bf16_supported": bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())}


# ---------------------------------------------------------------------------------------------
# 2. the test suite's GPU tests


def count(text: str, word: str) -> int:
    m = re.search(rf"(\d+) {word}", text)
    return int(m.group(1)) if m else 0


def gpu_test_files() -> list[str]:
    """The test files that mention gpu or cuda: the only ones that can hold a ``gpu`` mark, and
    collecting just them saves the half minute that collecting the whole suite takes."""
    return sorted(str(f.relative_to(REPO)) for f in (REPO / "tests").glob("test_*.py")
                  if re.search(r"gpu|cuda", f.read_text(errors="replace"), re.IGNORECASE))


def section_pytest(ctx) -> dict:
    log = ctx.log("pytest_gpu")
    files = gpu_test_files()
    if not files:
        return {"rows": [row("pytest -m gpu", "0 GPU-marked tests", notes="no test file mentions gpu or cuda")]}
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider",
           "--continue-on-collection-errors", *files]
    rc, seconds = run_logged(cmd, log, ctx.remaining())
    text = tail(log, 4000)
    counts = {w: count(text, w) for w in ("passed", "failed", "skipped", "errors?", "deselected")}
    counts["errors"] = counts.pop("errors?")
    if rc is None:
        raise TimeoutError(f"pytest was stopped at the time budget after {seconds:.0f} s; log {log}")
    if rc == 5:  # pytest: no tests collected
        return {"rows": [row("pytest -m gpu", "0 GPU-marked tests",
                             notes=f"{seconds:.0f} s; collected the {len(files)} files that mention gpu/cuda")],
                **counts, "returncode": rc}
    summary = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
    out = {"rows": [row("pytest -m gpu", summary or f"exit {rc}", notes=f"{seconds:.0f} s; log {log.name}")],
           **counts, "returncode": rc}
    if rc != 0:
        out["status"] = "failed"
        out["error"] = f"pytest exit code {rc}: {summary}\n{text[-1500:]}"
    return out


# ---------------------------------------------------------------------------------------------
# 3. the ConvLSTM step


class CompiledCellLoop(StraightforwardConvLSTM):
    """The reference's day loop with its cell step compiled.

    The step is vegviz's :class:`ConvLSTMCell` (the same cat -> conv -> split -> gates as the
    reference) holding a copy of the reference's convolution; the head is a copy of its head.
    """

    def __init__(self, ref: StraightforwardConvLSTM):
        nn.Module.__init__(self)  # the reference's layers are copied from ``ref``, not built anew
        self.hidden = ref.hidden
        conv = ref.conv
        self.cell = ConvLSTMCell(conv.in_channels - ref.hidden, ref.hidden, conv.kernel_size[0])
        self.cell.conv = self.conv = copy.deepcopy(conv)  # .conv: where bench_convlstm.grads looks
        self.head = copy.deepcopy(ref.head)
        # static shapes: one graph per (batch, precision), no dynamic-shape kernels
        self.step = torch.compile(self.cell, dynamic=False, fullgraph=True)

    def cell_step(self, x_t, state):
        return self.step(x_t, state)


def autocast(device, dtype, **kw):
    return torch.autocast(device.type, dtype=dtype, **kw) if dtype is not None else nullcontext()


def param_grads(model) -> list[torch.Tensor]:
    """Gradients of the gate convolution (weight, bias) and of the head (weight, bias)."""
    return [*grads(model), model.head.weight.grad, model.head.bias.grad]


def eager(model, x, target, dtype=None):
    """One forward + backward of the MSE per call; returns (y, gradients)."""
    def run():
        model.zero_grad(set_to_none=True)
        with autocast(x.device, dtype):
            y = model(x)
            y = y[0] if isinstance(y, tuple) else y
            loss = F.mse_loss(y, target)
        loss.backward()
        return y, param_grads(model)
    return run


def graphed(model, x, target, dtype=None):
    """The whole chunk (forward, loss, backward) captured once as a CUDA graph, replayed per call.

    Static buffers: a call copies the batch into them (as training would) and replays; the
    gradients are written (not accumulated) into the .grad tensors allocated during capture.
    """
    static_x, static_target = x.clone(), target.clone()

    def fwd_bwd():
        # no autocast weight cache: cached casts made during capture would be graph-private
        with autocast(x.device, dtype, cache_enabled=False):
            y = model(static_x)
            y = y[0] if isinstance(y, tuple) else y
            loss = F.mse_loss(y, static_target)
        loss.backward()
        return y

    side = torch.cuda.Stream()  # warm-up off the default stream (cuDNN autotuning, allocator), as capture requires
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            model.zero_grad(set_to_none=True)
            fwd_bwd()
    torch.cuda.current_stream().wait_stream(side)
    model.zero_grad(set_to_none=True)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_y = fwd_bwd()

    def run():
        static_x.copy_(x)
        static_target.copy_(target)
        graph.replay()
        return static_y, param_grads(model)
    return run


def vegviz_from(ref) -> ConvLSTM:
    """vegviz's ConvLSTM with the reference's weights (same function)."""
    conv = ref.conv
    model = ConvLSTM(conv.in_channels - ref.hidden, filters=ref.hidden, kernel_size=conv.kernel_size[0])
    model.load_single_conv_weights(conv.weight.detach(), conv.bias.detach())
    model.head.load_state_dict(ref.head.state_dict())
    return model.to(conv.weight.device)


SPEED_BASELINE = "vegviz fp32 eager"
#: seconds a compiled variant needs at least (compilation): not started with less left in the section
COMPILE_S = 60


def variants():
    """(name, cuda only, seconds it needs at least, note, make(ref, x, target) -> run), in the order
    they run: the costly compilations last, where a short time budget cuts them first."""
    bf16 = torch.bfloat16

    def pure_bf16(ref, x, target):
        return eager(copy.deepcopy(ref).to(bf16), x.to(bf16), target.to(bf16))

    def compiled(dtype):
        def make(ref, x, target):
            torch._dynamo.reset()  # compile from scratch: the warm-up time is the whole compilation
            return eager(CompiledCellLoop(ref), x, target, dtype)
        return make

    return [
        (SPEED_BASELINE, False, 10, "speed baseline", lambda r, x, t: eager(vegviz_from(r), x, t)),
        ("vegviz bf16 autocast", False, 10, "convlstm_scan turns autocast off: the recurrence runs in fp32",
         lambda r, x, t: eager(vegviz_from(r), x, t, bf16)),
        ("reference fp32 eager", False, 10, "", lambda r, x, t: eager(copy.deepcopy(r), x, t)),
        ("reference bf16 autocast", False, 10, "gates (conv) in bf16, c and h in fp32",
         lambda r, x, t: eager(copy.deepcopy(r), x, t, bf16)),
        ("reference pure bf16", False, 10, "weights, inputs, gates and state all bf16", pure_bf16),
        ("CUDA graph: vegviz fp32", True, 10, "whole chunk captured",
         lambda r, x, t: graphed(vegviz_from(r), x, t)),
        ("CUDA graph: reference fp32", True, 10, "whole chunk captured",
         lambda r, x, t: graphed(copy.deepcopy(r), x, t)),
        ("CUDA graph: reference bf16 autocast", True, 10, "gates bf16, state fp32; whole chunk captured",
         lambda r, x, t: graphed(copy.deepcopy(r), x, t, bf16)),
        ("reference, compiled cell, fp32", True, COMPILE_S, "torch.compile of the cell step", compiled(None)),
        ("reference, compiled cell, bf16 autocast", True, COMPILE_S, "torch.compile of the cell step",
         compiled(bf16)),
    ]


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(run, device, warmup: int, repeats: int) -> tuple[list[float], float]:
    """Milliseconds of each of ``repeats`` calls after ``warmup`` calls, and the seconds of the first call.

    On CUDA the calls are timed with events (the GPU timeline from the first launch to the
    last kernel, which includes the waits for a launch-bound CPU); on the CPU with perf_counter.
    """
    t = time.perf_counter()
    run()
    sync(device)
    first = time.perf_counter() - t
    for _ in range(warmup - 1):
        run()
    sync(device)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            run()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t = time.perf_counter()
            run()
            times.append((time.perf_counter() - t) * 1e3)
    return times, first


def launches(run, device, days: int) -> tuple[float | None, float | None]:
    """aten calls and CUDA kernels per day of one call (torch.profiler); None where not measured."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    try:
        with profile(activities=acts) as prof:
            run()
            sync(device)
        events = prof.events()
    except Exception:  # the profiler is a diagnostic: never the reason a variant fails
        return None, None
    aten = sum(1 for e in events if e.device_type == DeviceType.CPU and e.name.startswith("aten::"))
    kernels = sum(1 for e in events if e.device_type == DeviceType.CUDA)
    return aten / days, (kernels / days if device.type == "cuda" else None)


@contextmanager
def exact_fp32():
    """TF32 off (cuDNN convolutions and matmuls): the error baseline is true fp32."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def detached(out) -> tuple[torch.Tensor, list[torch.Tensor]]:
    y, gs = out
    return y.detach().float().clone(), [g.detach().float().clone() for g in gs]


def differences(out, base) -> dict:
    """Largest absolute differences of y and of the gradients, and relative to the largest baseline value."""
    (y, gs), (by, bgs) = out, base
    y_abs = (y - by).abs().max().item()
    g_abs = [(g - b).abs().max().item() for g, b in zip(gs, bgs)]
    g_rel = [a / max(b.abs().max().item(), 1e-30) for a, b in zip(g_abs, bgs)]
    return {"y_abs": y_abs, "y_rel": y_abs / max(by.abs().max().item(), 1e-30),
            "grad_abs": max(g_abs), "grad_rel": max(g_rel)}


def measure_variant(make, ref, x, target, base, ctx, days) -> dict:
    t = time.perf_counter()
    run = make(ref, x, target)  # CUDA graphs: warm-up and capture
    sync(ctx.device)
    setup = time.perf_counter() - t
    args = ctx.args
    times, first = time_calls(run, ctx.device, args.warmup, args.repeats)  # compiled: the first call compiles
    err = differences(detached(run()), base)
    aten, kernels = launches(run, ctx.device, days)
    ms = statistics.median(times)
    return {"ms_per_chunk": ms, "ms_per_day": ms / days, "best_ms_per_chunk": min(times), "warmup_s": setup + first,
            "aten_per_day": aten, "kernels_per_day": kernels, "err": err}


def fmt(v, spec=".2e") -> str:
    return "-" if v is None else format(v, spec)


def problem(a, batch, device):
    """Inputs, targets and the reference model (seeded) for one batch size, and the error baseline:
    vegviz fp32 eager with TF32 off."""
    nlat, nlon = a.grid
    torch.manual_seed(0)
    x = torch.randn(batch, a.days, a.inputs, nlat, nlon, device=device)
    target = torch.randn(batch, a.days, 1, nlat, nlon, device=device)
    ref = StraightforwardConvLSTM(a.inputs, a.filters, a.kernel).to(device)
    with exact_fp32():
        base = detached(eager(vegviz_from(ref), x, target)())
    return x, target, ref, base


def variant_row(case: str, m: dict, base_ms: float | None, note: str) -> dict:
    speedup = None if base_ms is None else base_ms / m["ms_per_chunk"]
    e = m["err"]
    per_day = ", ".join(f"{v:.0f} {k}/day" for k, v in (("aten", m["aten_per_day"]), ("kernels", m["kernels_per_day"]))
                        if v is not None)
    return row(case, f"{m['ms_per_day']:.4g} ms/day ({m['ms_per_chunk']:.4g} ms/chunk)", fmt(speedup, ".2f") + "x",
               f"y {fmt(e['y_abs'])} (rel {fmt(e['y_rel'])}); grad {fmt(e['grad_abs'])} (rel {fmt(e['grad_rel'])})",
               "; ".join(s for s in (note, f"warm-up {m['warmup_s']:.1f} s", per_day) if s),
               **m, status="ok", speedup=speedup)


def section_convlstm(ctx) -> dict:
    a = ctx.args
    if ctx.cuda:
        torch.backends.cudnn.benchmark = True  # fixed shapes: autotune each convolution once
    problems = {b: problem(a, b, ctx.device) for b in a.batches}
    config = {"batches": a.batches, "days": a.days, "grid": list(a.grid), "inputs": a.inputs, "filters": a.filters,
              "kernel": a.kernel, "device": str(ctx.device), "warmup": a.warmup, "repeats": a.repeats,
              "cudnn_benchmark": bool(torch.backends.cudnn.benchmark)}
    rows, failed, base_ms = [], [], {}
    for k, (name, cuda_only, needs_s, note, make) in enumerate(variants()):
        for batch in a.batches:
            case = f"b{batch} {name}"
            r = {"batch": batch, "variant": name, "order": k}
            if cuda_only and not ctx.cuda:
                rows.append(row(case, "skipped: no CUDA", status="skipped", **r))
                continue
            if ctx.remaining() < needs_s:
                rows.append(row(case, "skipped: time budget", status="skipped", **r))
                continue
            x, target, ref, base = problems[batch]
            try:
                m = measure_variant(make, ref, x, target, base, ctx, a.days)
            except Exception as e:
                failed.append(case)
                rows.append(row(case, f"failed: {type(e).__name__}: {e}"[:300], status="failed",
                                traceback=traceback.format_exc(), **r))
                continue
            finally:
                if ctx.cuda:
                    torch.cuda.empty_cache()
            if name == SPEED_BASELINE:
                base_ms[batch] = m["ms_per_chunk"]
            rows.append({**variant_row(case, m, base_ms.get(batch), note), **r})
    rows.sort(key=lambda r: (r["batch"], r["order"]))
    out = {"rows": rows, "config": config}
    if failed:
        out.update(status="failed", error="variants failed: " + ", ".join(failed))
    return out


# ---------------------------------------------------------------------------------------------
# 4-6. epochs through the command line


def vegviz_cmd(launcher: list[str]) -> list[str]:
    """``<launcher> -m vegviz`` where the package has a __main__, else ``<launcher> <console script>``.

    The launcher is this Python, or torchrun (which runs scripts and ``-m`` modules in Python itself).
    """
    if importlib.util.find_spec("vegviz.__main__") is not None:
        return [*launcher, "-m", "vegviz"]
    script = shutil.which("vegviz") or str(Path(sys.executable).with_name("vegviz"))
    if not Path(script).exists():
        raise FileNotFoundError("neither `python -m vegviz` nor a `vegviz` console script. Fix: pip install -e .")
    return [*launcher, script]


def start_build(ctx, name: str):
    """Start the data build ``name`` (ucrb, conus) in the background unless running or not needed."""
    if name in ctx.builds:
        return
    if name == "ucrb":
        cmd = [sys.executable, "-c", UCRB_BUILD]
    elif ctx.args.conus_store:
        return
    else:
        cmd = [sys.executable, "-c", CONUS_BUILD, ctx.work / "conus-2001-2004.zarr"]
    ctx.builds[name] = Background(cmd, ctx.log(f"build_{name}"))


def wait_build(ctx, name: str, label: str) -> dict:
    """The build's row (time, or a failure raised with the log's tail)."""
    start_build(ctx, name)
    b = ctx.builds[name]
    overlap = "in the background from the start (nice 10)" if not ctx.args.serial_builds else "before this section"
    rc, seconds = b.wait(ctx.remaining())
    if rc != 0:
        raise Failed(f"{label} build", f"exit code {rc}", b.log)
    return row(f"{label} build", f"{seconds:.0f} s", notes=f"{overlap}; log {b.log.name}", seconds=seconds)


def epoch_seconds(run_dir: Path) -> tuple[float, str]:
    """The first epoch's ``seconds`` and ``device`` from the run's history.csv."""
    with open(run_dir / "history.csv", newline="") as f:
        first = next(csv.DictReader(f))
    return float(first["seconds"]), first.get("device", "")


def train_epoch(ctx, label: str, train_args: list[str], launcher: list[str] | None = None) -> dict:
    """One epoch through ``vegviz train`` in a subprocess: its row (epoch time vs the target)."""
    run_dir = ctx.work / re.sub(r"\W+", "-", label)
    shutil.rmtree(run_dir, ignore_errors=True)
    cmd = [*vegviz_cmd(launcher or [sys.executable]), "train", *train_args, "--epochs", "1", "--device", "cuda",
           "--no-progress", "--run-dir", run_dir]
    log = ctx.log(re.sub(r"\W+", "_", label))
    with GpuMemory() as mem:
        rc, wall = run_logged(cmd, log, ctx.remaining())
    if rc is None:
        raise Failed(label, f"stopped at the time budget after {wall:.0f} s", log)
    if rc != 0:
        raise Failed(label, f"exit code {rc}", log)
    seconds, device = epoch_seconds(run_dir)
    met = seconds <= TARGET_EPOCH_S
    peak = f"; peak GPU memory +{mem.mib} MiB (nvidia-smi)" if mem.mib is not None else ""
    return row(label, f"{seconds:.2f} s/epoch", f"target <= {TARGET_EPOCH_S:g} s: {'met' if met else 'NOT met'}",
               notes=f"device {device}; process {wall:.0f} s (start-up, data, validation, predictions){peak}; "
                     f"log {log.name}", epoch_s=seconds, process_s=wall, peak_gpu_mib=mem.mib, target_met=met)


def need_cuda(ctx):
    if not ctx.cuda:
        raise Skip("no CUDA device")


def epochs(ctx, label: str, train_args: list[str], precisions) -> tuple[list[dict], list[str]]:
    rows, failed = [], []
    for p in precisions:
        case = f"{label} epoch {p}"
        try:
            rows.append(train_epoch(ctx, case, [*train_args, "--set", f"precision={p}"]))
        except Exception as e:
            failed.append(case)
            rows.append(failed_row(case, e))
    return rows, failed


def failed_row(case: str, e: Exception) -> dict:
    """A failure as a table row: short in the table, the log's tail in the JSON."""
    if isinstance(e, Failed):
        return row(case, f"failed: {e.problem}", notes=f"{e.why[:200]} (log {e.log.name})",
                   status="failed", log_tail=tail(e.log, 3000))
    return row(case, f"failed: {type(e).__name__}", notes=str(e)[:300], status="failed")


def with_status(rows, failed) -> dict:
    out = {"rows": rows}
    if failed:
        out.update(status="failed", error="failed: " + ", ".join(failed))
    return out


def section_ucrb(ctx) -> dict:
    need_cuda(ctx)
    rows = [wait_build(ctx, "ucrb", "virtual UCRB")]
    more, failed = epochs(ctx, "UCRB", ["--domain", "ucrb"], ctx.args.precisions)
    return with_status(rows + more, failed)


def section_conus(ctx) -> dict:
    need_cuda(ctx)
    store = ctx.args.conus_store
    if store:
        if not Path(store).exists():
            raise FileNotFoundError(f"--conus-store {store}: no such store")
        rows = [row("CONUS store", "given", notes=str(store))]
    else:
        store = ctx.work / "conus-2001-2004.zarr"
        rows = [wait_build(ctx, "conus", "virtual CONUS 2001-2004")]
    sets = [f"patch={ctx.args.patch}", *CONUS_PERIODS]
    train_args = ["--data", store, *[a for s in sets for a in ("--set", s)]]
    more, failed = epochs(ctx, f"CONUS patch {ctx.args.patch}", train_args, ctx.args.conus_precisions)
    return with_status(rows + more, failed)


def has_ddp() -> bool:
    """Whether vegviz.training sets up torch.distributed (else torchrun's ranks train independently)."""
    folder = REPO / "vegviz" / "training"
    return any(re.search(r"init_process_group|DistributedDataParallel", f.read_text(errors="replace"))
               for f in folder.glob("*.py"))


def section_ddp(ctx) -> dict:
    need_cuda(ctx)
    n = torch.cuda.device_count()
    if n < 2:
        raise Skip(f"{n} GPU")
    rows = [wait_build(ctx, "ucrb", "virtual UCRB")]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    try:
        r = train_epoch(ctx, "UCRB epoch DDP x2", ["--domain", "ucrb"], launcher)
    except Exception as e:
        return with_status(rows + [failed_row("UCRB epoch DDP x2", e)], ["UCRB epoch DDP x2"])
    if not has_ddp():
        r["notes"] += "; vegviz.training has no torch.distributed code: the 2 ranks trained independently"
    return with_status(rows + [r], [])


# ---------------------------------------------------------------------------------------------
# running, reporting


RUNNERS = {"env": section_env, "pytest": section_pytest, "convlstm": section_convlstm, "ucrb": section_ucrb,
           "conus": section_conus, "ddp": section_ddp}
#: the order sections run in: the UCRB epochs (the 5 s target) before the ConvLSTM variants, whose
#: compilations the budget cuts first; CONUS, which waits for the longest build, last
ORDER = ("env", "pytest", "ucrb", "ddp", "convlstm", "conus")


def run_section(ctx, name: str) -> dict:
    ctx.section_end = min(ctx.deadline, time.perf_counter() + SECTION_CAP_S[name])
    t = time.perf_counter()
    if ctx.deadline - t < 5:
        out = {"status": "skipped", "reason": "time budget (--budget) used up", "rows": []}
    else:
        try:
            out = RUNNERS[name](ctx)
            out.setdefault("status", "ok")
        except Skip as e:
            out = {"status": "skipped", "reason": str(e), "rows": []}
        except Exception as e:
            out = {"status": "failed", "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc(),
                   "rows": []}
            if isinstance(e, Failed):
                out["log_tail"] = tail(e.log, 3000)
    out["seconds"] = time.perf_counter() - t
    return out


def cell(v) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def markdown(results: dict) -> str:
    env = results["sections"].get("env", {})
    gpus = ", ".join(env.get("gpus") or []) or "no GPU"
    lines = [f"vegviz GPU benchmark: {gpus}; torch {torch.__version__}, CUDA {torch.version.cuda}, "
             f"{dt.date.today()}{' (--cpu-smoke)' if results['cpu_smoke'] else ''}", "",
             "| section | case | result | speed-up / target | difference from fp32 eager | notes |",
             "|---|---|---|---|---|---|"]
    for name in SECTIONS:
        s = results["sections"].get(name)
        if s is None:
            continue
        title = TITLES[name]
        if s["status"] == "skipped" and not s["rows"]:
            lines.append(f"| {title} | | skipped: {cell(s.get('reason', ''))} | | | |")
        for r in s["rows"]:
            lines.append("| " + " | ".join(cell(v) for v in (title, r["case"], r["result"], r["compared"],
                                                               r["error"], r["notes"])) + " |")
        if s["status"] == "failed" and not any(r.get("status") == "failed" for r in s["rows"]):
            err = s.get("error", "").strip().splitlines()
            lines.append(f"| {title} | FAILED | {cell(err[0] if err else '')} | | | {s['seconds']:.0f} s |")
    return "\n".join(lines)


def finite(v):
    """JSON has no NaN or infinity: None stands for them."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [finite(x) for x in v]
    if isinstance(v, Path):
        return str(v)
    return v


def write(ctx):
    ctx.out.parent.mkdir(parents=True, exist_ok=True)
    ctx.results["seconds"] = time.perf_counter() - ctx.t0
    sections = ctx.results["sections"]
    ctx.results["sections"] = {n: sections[n] for n in SECTIONS if n in sections}  # the documented order
    ctx.out.write_text(json.dumps(finite(ctx.results), indent=1, default=str) + "\n")
    ctx.out.with_suffix(".md").write_text(markdown(ctx.results) + "\n")


def default_out() -> str:
    return str(Path(os.environ["OUT"]) / "bench_gpu.json") if os.environ.get("OUT") else "bench_gpu.json"


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=default_out(), help="the JSON results (default $OUT/bench_gpu.json or "
                                                         "./bench_gpu.json); the markdown table goes next to it")
    ap.add_argument("--conus-store", help="a prebuilt CONUS Zarr store covering 2001-2004 (passed as --data)")
    ap.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    ap.add_argument("--cpu-smoke", action="store_true", help="sections 1 and 3 at tiny sizes on the CPU (~20 s)")
    ap.add_argument("--budget", type=float, default=480, help="seconds for the whole run (default 480)")
    ap.add_argument("--batches", type=int, nargs="+", default=[2, 8])
    ap.add_argument("--days", type=int, default=60, help="days per chunk (default 60, the study's chunk)")
    ap.add_argument("--grid", type=int, nargs=2, default=list(UCRB.shape), metavar=("NLAT", "NLON"))
    ap.add_argument("--inputs", type=int, default=7)
    ap.add_argument("--filters", type=int, default=16)
    ap.add_argument("--kernel", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=3, help="calls before timing (the first includes compilation)")
    ap.add_argument("--repeats", type=int, default=5, help="timed calls per variant (the median is reported)")
    ap.add_argument("--precisions", default="fp32,bf16", help="precisions of the UCRB epochs (default fp32,bf16)")
    ap.add_argument("--conus-precisions", default="bf16",
                    help="precisions of the CONUS epochs (default bf16, what precision auto picks on an H100: "
                         "each CONUS run takes minutes)")
    ap.add_argument("--patch", type=int, default=64, help="CONUS training patch in cells (default 64)")
    ap.add_argument("--work-dir", help="folder for runs and the CONUS store (default: a temporary one, removed)")
    ap.add_argument("--serial-builds", action="store_true",
                    help="build the data right before its section instead of in the background from the start")
    args = ap.parse_args(argv)
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        ap.error(f"--sections: unknown {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")
    args.precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    args.conus_precisions = [p.strip() for p in args.conus_precisions.split(",") if p.strip()]
    if args.cpu_smoke:  # the code paths of sections 1 and 3 at tiny sizes
        args.sections = [s for s in args.sections if s in ("env", "convlstm")]
        args.batches, args.days, args.grid, args.warmup, args.repeats = [1], 4, [8, 8], 1, 2
    return args


def main(argv=None) -> int:
    args = parse(argv)
    # stopped from outside (a job's time limit): still stop the builds and write what was measured
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ctx = Context(args)
    ctx.results = {"script": "benchmarks/bench_gpu.py", "argv": sys.argv[1:] if argv is None else list(argv),
                   "started": dt.datetime.now().isoformat(timespec="seconds"), "cpu_smoke": args.cpu_smoke,
                   "sections": {}}
    for name in SECTIONS:  # every section has an entry, so readers find all six
        if name not in args.sections:
            why = "--cpu-smoke" if args.cpu_smoke else "not in --sections"
            ctx.results["sections"][name] = {"status": "skipped", "reason": why, "rows": []}
    try:
        if ctx.cuda and not args.serial_builds:  # overlap the builds with the other sections
            if "ucrb" in args.sections or ("ddp" in args.sections and torch.cuda.device_count() >= 2):
                start_build(ctx, "ucrb")
            if "conus" in args.sections:
                start_build(ctx, "conus")
        for name in ORDER:
            if name not in args.sections:
                continue
            print(f"[{time.perf_counter() - ctx.t0:5.0f} s] {TITLES[name]} ...", flush=True)
            ctx.results["sections"][name] = s = run_section(ctx, name)
            why = (s.get("reason") or s.get("error") or "").strip().split("\n")[0]
            print(f"[{time.perf_counter() - ctx.t0:5.0f} s] {TITLES[name]}: {s['status']}"
                  + (f" ({why})" if why else ""), flush=True)
            write(ctx)
    finally:
        for b in ctx.builds.values():
            b.stop()
        if ctx.own_work:
            shutil.rmtree(ctx.work, ignore_errors=True)
    failed = [n for n, s in ctx.results["sections"].items() if s["status"] == "failed"]
    ctx.results["failed"] = failed
    write(ctx)
    print("\n" + markdown(ctx.results) + "\n")
    print(f"wrote {ctx.out} and {ctx.out.with_suffix('.md')} in {time.perf_counter() - ctx.t0:.0f} s"
          + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
