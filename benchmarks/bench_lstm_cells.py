"""Benchmark the LSTM baseline on the basin cells only against the full grid.

``LSTMBaseline`` has no spatial context (``per_cell = True``), so ``model(x, cells=mask)``
runs the recurrence on the mask cells alone: on the UCRB window 1,886 of the 3,402 cells
(the ``mask`` of ``vegviz.data.static``). This script times, at the study scale of a
training chunk (batch 2, 60 days, 16 hidden, 12 input channels: the 5 forcings,
elevation and the 6 land-cover classes of the basin), on 2 threads:

* training: forward + backward of the mask-weighted MSE, full grid vs ``cells=mask``;
* prediction: forward under ``torch.no_grad()``, full grid vs ``cells=mask``.

Both variants share weights and inputs and run interleaved; the script prints the best
(and median) of ``--repeats`` wall-clock times, the ratio cells / full grid measured in
this run, the same for the process CPU time (all threads; less sensitive to other jobs on
shared cores, as the threads sleep rather than spin while descheduled), the CPU
(``lscpu``) and the largest differences of outputs and gradients. The ratio stays above
the cell fraction (0.55) by the per-step costs that do not shrink with the cells, mainly
the weight-gradient convolution of the fast recurrence (~3 ms per day on 2 threads for any
number of cells, against ~0.5 ms for the same product as a matrix multiplication).

    python benchmarks/bench_lstm_cells.py                  # batch 2, 60 days, 2 threads
    python benchmarks/bench_lstm_cells.py --batch 8 --days 90 --repeats 9

As in ``bench_convlstm.py``, ``OMP_WAIT_POLICY=PASSIVE`` is set unless given (the cores of
the test machine are shared; spinning OpenMP threads inflate timings at random).
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads the OpenMP runtime

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
from machine import cpu_model  # noqa: E402  (benchmarks/machine.py)


def cpu_name() -> str:
    return (f"{cpu_model()} ({os.cpu_count()} CPUs, torch CPU capability "
            f"{torch.backends.cpu.get_cpu_capability()})")


def basin_mask() -> torch.Tensor:
    from vegviz.data.static import load_static

    return torch.from_numpy(load_static()["mask"].fillna(0).values.astype(bool))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--days", type=int, default=60)
    p.add_argument("--inputs", type=int, default=12, help="input channels")
    p.add_argument("--hidden", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=9)
    args = p.parse_args(argv)

    from vegviz.models import LSTMBaseline

    torch.set_num_threads(args.threads)
    mask = basin_mask()
    nlat, nlon = mask.shape
    torch.manual_seed(0)
    model = LSTMBaseline(args.inputs, hidden=args.hidden)
    x = torch.randn(args.batch, args.days, args.inputs, nlat, nlon)
    target = torch.randn(args.batch, args.days, 1, nlat, nlon)
    weight = mask.float() / (args.batch * args.days * int(mask.sum()))

    def train(cells):
        model.zero_grad(set_to_none=True)
        y, _ = model(x, cells=cells)
        ((y - target).square() * weight).sum().backward()
        return y.detach(), [q.grad.clone() for q in model.parameters()]

    def predict(cells):
        with torch.no_grad():
            return model(x, cells=cells)[0]

    results = {}
    for label, fn in [("forward + backward", train), ("forward (no_grad)", predict)]:
        fn(None), fn(mask)  # warm-up (allocator, oneDNN primitives)
        times = {"full": [], "cells": []}
        cpu = {"full": [], "cells": []}
        for _ in range(args.repeats):
            for variant, cells in (("full", None), ("cells", mask)):
                t, c = time.perf_counter(), time.process_time()
                fn(cells)
                times[variant].append(time.perf_counter() - t)
                cpu[variant].append(time.process_time() - c)
        results[label] = times, cpu

    y_full, g_full = train(None)
    y_cells, g_cells = train(mask)
    dy = float((y_full - y_cells)[..., mask].abs().max())
    dg = max(float(((a - b).abs().max() / a.abs().max())) for a, b in zip(g_full, g_cells))

    print(f"CPU: {cpu_name()}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, OMP_WAIT_POLICY="
          f"{os.environ['OMP_WAIT_POLICY']}")
    print(f"scale: batch {args.batch}, {args.days} days, {args.inputs} inputs, {args.hidden} hidden, "
          f"{nlat} x {nlon} grid, mask {int(mask.sum())} of {mask.numel()} cells "
          f"({mask.float().mean():.3f}); best / median of {args.repeats}")
    for label, (times, cpu) in results.items():
        for kind, values in (("wall", times), ("CPU", cpu)):
            best = {k: min(v) for k, v in values.items()}
            med = {k: statistics.median(v) for k, v in values.items()}
            print(f"{label:>20} {kind:>4}: full grid {best['full']:.3f} / {med['full']:.3f} s, cells only "
                  f"{best['cells']:.3f} / {med['cells']:.3f} s, ratio {best['cells'] / best['full']:.2f}x "
                  f"(median {med['cells'] / med['full']:.2f}x)")
    print(f"largest differences on the mask: output {dy:.2e}, parameter gradients {dg:.2e} (relative to max)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
