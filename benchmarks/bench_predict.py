"""Benchmark: peak memory of predict() on a large domain, streamed into NetCDF against held in memory.

    python benchmarks/bench_predict.py --store PATH [--tile 64] [--threads 2]

``--store``: a virtual CONUS Zarr store (``vegviz.data.virtual.build_store``; see bench_scale.py).
Each mode runs in a child process (peak RSS from ``ru_maxrss``) with an untrained ConvLSTM (the
weights do not change the cost): ``file`` is ``predict(..., path=...)``, what ``Run.predict`` does;
``memory`` is ``predict(..., path=None)``, the reference. Prints a table with the CPU and load.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap

from machine import cpu_model, load_average  # noqa: E402  (benchmarks/machine.py)

CHILD = textwrap.dedent("""
    import json, resource, sys, time
    import pandas as pd, torch, xarray as xr
    from vegviz.training import Config, fit_normalization, predict
    from vegviz.training.trainer import build_model
    spec = json.loads(sys.argv[1])
    ds = xr.open_zarr(spec["store"])
    years = sorted(set(pd.DatetimeIndex(ds["time"].values).year))
    y = years[0]
    cfg = Config(data=spec["store"], device="cpu", num_threads=spec["threads"], tile=spec["tile"],
                 periods={"train": [f"{y}-01-01", f"{y + 1}-12-31"], "validation": [f"{y + 2}-01-01", f"{y + 2}-12-31"],
                          "test": [f"{years[-1]}-01-01", f"{years[-1]}-12-31"]})
    stats = fit_normalization(ds, cfg)
    torch.manual_seed(0)
    model = build_model(cfg, stats.n_inputs)
    t = time.perf_counter()
    out = predict(model, ds, cfg, stats, path=spec["path"])
    v = out[cfg.model]
    print("RESULT", json.dumps({"seconds": time.perf_counter() - t, "shape": list(v.shape),
                                "output_gib": v.size * 4 / 2**30,
                                "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
""")


def run(spec: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"child failed:\n{out.stderr[-4000:]}")
    return json.loads(next(line for line in out.stdout.splitlines() if line.startswith("RESULT "))[7:])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--store", required=True)
    p.add_argument("--tile", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    before = load_average()
    with tempfile.TemporaryDirectory() as d:
        spec = {"store": args.store, "tile": args.tile, "threads": args.threads}
        streamed = run({**spec, "path": f"{d}/predictions.nc"})
    reference = run({**spec, "path": None})
    print(f"CPU: {cpu_model()}; load average before {before:.1f}, after {load_average():.1f}")
    print(f"\npredictions {streamed['shape']} ({streamed['output_gib']:.2f} GiB of float32), tiles of {args.tile}\n")
    print("| predict | seconds | peak RSS |\n|---|---|---|")
    print(f"| held in memory (reference) | {reference['seconds']:.0f} | {reference['peak_gib']:.2f} GiB |")
    print(f"| streamed into NetCDF | {streamed['seconds']:.0f} ({streamed['seconds'] / reference['seconds']:.2f} x) | "
          f"{streamed['peak_gib']:.2f} GiB ({streamed['peak_gib'] - reference['peak_gib']:+.2f} GiB) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
