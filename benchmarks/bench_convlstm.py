"""Benchmark the ConvLSTM of vegviz.models against a straightforward implementation.

The reference is the textbook single-convolution ConvLSTM written out below: per day
``torch.cat([x_t, h])`` -> one ``nn.Conv2d`` -> split the gates -> sigmoid/tanh, a Python
loop over time, autograd for the backward pass, NCHW tensors, and the same 1 x 1
convolution head. ``vegviz.models.ConvLSTM`` gets the same weights and inputs; both run
forward + backward of a mean-squared error, interleaved, and the script prints the
wall-clock times (best and median of the repeats), the process CPU times (less sensitive
to other jobs on shared cores), the ratios, and the largest differences of outputs and
gradients.

It then measures the peak resident memory of one forward + backward pass of each
implementation, each in a fresh subprocess (Linux: the rise of VmHWM over VmRSS after the
inputs are built), at the timed length or at the lengths of ``--mem-days``; with two or
more lengths it extrapolates the memory per day to a year and to the window that fits a
budget (default 3 GiB).

    python benchmarks/bench_convlstm.py                    # batch 8, 90 days, 2 threads
    python benchmarks/bench_convlstm.py --no-timing --mem-days 45 90 180 365

The cores of the test machine are shared. OpenMP's default is to spin at every barrier,
so when another process holds a core, each of the thousands of small parallel regions
waits for a descheduled thread and both timings inflate ~10x at random. The script
therefore sets ``OMP_WAIT_POLICY=PASSIVE`` (threads sleep at barriers) unless the
variable is already set. On an idle machine passive waiting costs both implementations a
few percent (vegviz a little more: it runs more, smaller elementwise ops); run with
``OMP_WAIT_POLICY=active`` to compare.
"""
from __future__ import annotations

import os

# before torch loads the OpenMP runtime (see the module docstring)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from vegviz.grid import UCRB  # noqa: E402
from vegviz.models import ConvLSTM  # noqa: E402

GIB = 2**30
TARGET_SPEEDUP = 1.5


class StraightforwardConvLSTM(nn.Module):
    """The textbook loop: cat -> Conv2d -> split -> sigmoid/tanh, head on the stacked h."""

    def __init__(self, n_inputs: int, hidden: int, kernel_size: int = 3):
        super().__init__()
        self.hidden = hidden
        self.conv = nn.Conv2d(n_inputs + hidden, 4 * hidden, kernel_size, padding=kernel_size // 2)
        self.head = nn.Conv2d(hidden, 1, 1)

    def forward(self, x):
        b, steps, _, nlat, nlon = x.shape
        h = x.new_zeros(b, self.hidden, nlat, nlon)
        c = torch.zeros_like(h)
        hs = []
        for t in range(steps):
            h, c = self.cell_step(x[:, t], (h, c))
            hs.append(h)
        return self.head(torch.stack(hs, dim=1).flatten(0, 1)).unflatten(0, (b, steps))

    def cell_step(self, x_t, state):
        """One day: (h, c) from x_t and the previous (h, c)."""
        h, c = state
        i, f, o, g = torch.split(self.conv(torch.cat([x_t, h], dim=1)), self.hidden, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


def build(args, steps: int):
    torch.manual_seed(0)
    nlat, nlon = UCRB.shape
    x = torch.randn(args.batch, steps, args.inputs, nlat, nlon)
    target = torch.randn(args.batch, steps, 1, nlat, nlon)
    ref = StraightforwardConvLSTM(args.inputs, args.filters)
    ours = ConvLSTM(args.inputs, filters=args.filters)
    ours.load_single_conv_weights(ref.conv.weight.detach(), ref.conv.bias.detach())
    ours.head.load_state_dict(ref.head.state_dict())
    return x, target, {"reference": ref, "vegviz": ours}


def step(model, x, target):
    """One forward + backward; returns the detached output and the model (with gradients)."""
    model.zero_grad(set_to_none=True)
    y = model(x)
    y = y[0] if isinstance(y, tuple) else y
    F.mse_loss(y, target).backward()
    return y.detach(), model


def grads(model):
    conv = model.conv if hasattr(model, "conv") else model.cells[0].conv
    return conv.weight.grad, conv.bias.grad


def time_both(args):
    x, target, models = build(args, args.days)
    ys = {name: step(m, x, target)[0] for name, m in models.items()}  # warm-up + check
    dy = (ys["reference"] - ys["vegviz"]).abs().max().item()
    dgw = max(
        ((a - b).abs().max() / a.abs().max()).item()
        for a, b in zip(grads(models["reference"]), grads(models["vegviz"]))
    )
    times = {name: [] for name in models}
    cpu = {name: [] for name in models}
    for _ in range(args.repeats):
        for name, m in models.items():
            t0, c0 = time.perf_counter(), time.process_time()
            step(m, x, target)
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return times, cpu, dy, dgw


def rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_child(args):
    """In a fresh process: peak RSS rise of one forward + backward of one implementation."""
    x, target, models = build(args, args.days)
    model = models[args.child]
    del models
    base = rss_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:  # reset the peak (VmHWM) to the current RSS
        f.write("5")
    step(model, x, target)
    print(json.dumps({"peak_bytes": (rss_kib("VmHWM") - base) * 1024}))


def measure_memory(args, impl: str, days: int) -> int:
    cmd = [sys.executable, __file__, "--child", impl, "--days", str(days), "--batch", str(args.batch),
           "--inputs", str(args.inputs), "--filters", str(args.filters), "--threads", str(args.threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_bytes"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--days", type=int, default=90, help="sequence length (default 90)")
    ap.add_argument("--inputs", type=int, default=6, help="input channels (default 6)")
    ap.add_argument("--filters", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-timing", action="store_true", help="skip the timing")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    ap.add_argument("--mem-days", type=int, nargs="+", help="sequence lengths for the memory (default: --days)")
    ap.add_argument("--budget-gib", type=float, default=3.0)
    ap.add_argument("--child", choices=["reference", "vegviz"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.child:
        return memory_child(args)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs visible, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY') or 'default'}")
    print(f"config: batch {args.batch}, {args.days} days, {args.inputs} inputs, grid {UCRB.shape[0]} x {UCRB.shape[1]}, "
          f"{args.filters} filters, 3 x 3 kernel, 1 layer, float32, forward + backward of an MSE loss")
    if not args.no_timing:
        report_times(args)
    if not args.no_memory:
        report_memory(args)


def report_times(args):
    times, cpu, dy, dgw = time_both(args)
    for name, ts in times.items():
        print(f"{name:>10}: best {min(ts):.3f} s  median {statistics.median(ts):.3f} s wall, "
              f"median {statistics.median(cpu[name]):.3f} s CPU  "
              f"({args.repeats} repeats: {' '.join(f'{t:.2f}' for t in ts)})")
    ratio_best = min(times["reference"]) / min(times["vegviz"])
    ratio_med = statistics.median(times["reference"]) / statistics.median(times["vegviz"])
    ratio_cpu = statistics.median(cpu["reference"]) / statistics.median(cpu["vegviz"])
    print(f"speed-up (reference / vegviz): {ratio_best:.2f}x on best wall times (noise only adds time), "
          f"{ratio_med:.2f}x on median wall times, {ratio_cpu:.2f}x on median CPU times; "
          f"target >= {TARGET_SPEEDUP}: {'met' if ratio_best >= TARGET_SPEEDUP else 'NOT met'}")
    print(f"same results: max |dy| = {dy:.2e}, max relative |d grad(conv)| = {dgw:.2e}")


def report_memory(args):
    print(f"peak memory of one forward + backward (RSS rise, fresh process, batch {args.batch}):")
    per_day = {}
    for impl in ("reference", "vegviz"):
        peaks = {d: measure_memory(args, impl, d) for d in sorted(args.mem_days or [args.days])}
        line = ", ".join(f"{d} days {p / GIB:.2f} GiB" for d, p in peaks.items())
        if len(peaks) > 1:
            (d0, p0), (d1, p1) = min(peaks.items()), max(peaks.items())
            per_day[impl] = slope = (p1 - p0) / (d1 - d0)
            fits = int((args.budget_gib * GIB - (p0 - slope * d0)) / slope)
            line += (f"; {slope / 2**20:.1f} MiB/day -> 365 days ~{(p0 + slope * (365 - d0)) / GIB:.1f} GiB, "
                     f"{args.budget_gib:g} GiB fits ~{fits} days")
        print(f"{impl:>10}: {line}")
    if len(per_day) == 2:
        print(f"memory per day: vegviz / reference = {per_day['vegviz'] / per_day['reference']:.2f}")

if __name__ == "__main__":
    main()
