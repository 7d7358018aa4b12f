"""Command line: the same operations as the library, for batch use.

    vegviz demo           build/open the virtual basin, print its summary, write the overview figure
    vegviz info           summary of a data set (a catalog entry or a Zarr/NetCDF path)
    vegviz build-basin    build the virtual basin cache (full or small)
    vegviz build-static   rebuild the committed static fields from the source packages
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def _open(name: str, seed: int):
    """A data set by catalog entry name or by path; validated."""
    import xarray as xr

    from .contract import validate

    p = Path(name)
    if p.exists():
        ds = xr.open_zarr(p) if p.is_dir() else xr.open_dataset(p, engine="netcdf4")
        return validate(ds) if "time" in ds.dims else ds
    from .catalog import open_catalog

    cat = open_catalog()
    if name not in cat:
        raise SystemExit(f"error: {name!r} is neither a file nor a catalog entry; entries: {', '.join(cat)}")
    params = {u["name"] for u in cat._entries[name].describe().get("user_parameters", [])}
    source = cat[name](seed=seed) if "seed" in params else cat[name]
    ds = source.to_dask()
    return validate(ds) if "time" in ds.dims else ds


def cmd_demo(args) -> int:
    from .data.summary import summarize
    from .data.virtual import open_virtual_basin

    t0 = time.perf_counter()
    ds = open_virtual_basin(args.variant, seed=args.seed)
    print(f"opened virtual basin ({args.variant}) in {time.perf_counter() - t0:.1f} s")
    print(summarize(ds))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from .figures import overview_figure

    path = overview_figure(ds, out / "overview.png")
    print(f"\nwrote {path}")
    print("next: `make lab` and open notebooks/01_data_tour.ipynb")
    return 0


def cmd_info(args) -> int:
    from .data.summary import summarize

    ds = _open(args.dataset, args.seed)
    print(summarize(ds))
    if args.realism:
        import pandas as pd

        from .data.virtual.diagnostics import realism

        with pd.option_context("display.max_colwidth", 60, "display.width", 160):
            print("\nrealism (inside the mask, whole years):")
            print(realism(ds).to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    return 0


def cmd_build_basin(args) -> int:
    from .data.virtual import open_virtual_basin

    t0 = time.perf_counter()
    ds = open_virtual_basin(args.variant, seed=args.seed, data_dir=args.data_dir)
    print(f"virtual basin {args.variant!r} (seed {args.seed}) ready in {time.perf_counter() - t0:.1f} s: "
          f"{ds.sizes['time']} days")
    return 0


def cmd_build_static(args) -> int:
    from .data.static import SourceMissing, STATIC_FILE, build_static, write_static

    try:
        ds = build_static()
    except SourceMissing as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    path = write_static(ds, args.out or STATIC_FILE)
    print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vegviz", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="build/open the virtual basin and summarise it")
    d.add_argument("--variant", choices=("full", "small"), default="full")
    d.add_argument("--seed", type=int, default=42)
    d.add_argument("--out", default="artifacts", help="folder for the overview figure")
    d.set_defaults(func=cmd_demo)

    i = sub.add_parser("info", help="summary of a data set")
    i.add_argument("dataset", nargs="?", default="virtual_ucrb_small",
                   help="catalog entry (virtual_ucrb, virtual_ucrb_small) or path to a Zarr/NetCDF store")
    i.add_argument("--seed", type=int, default=42)
    i.add_argument("--realism", action="store_true", help="also print the climate/vegetation realism table")
    i.set_defaults(func=cmd_info)

    b = sub.add_parser("build-basin", help="build the virtual basin cache")
    b.add_argument("--variant", choices=("full", "small"), default="full")
    b.add_argument("--seed", type=int, default=42)
    b.add_argument("--data-dir", default=None, help="cache folder (default: $VEGVIZ_DATA_DIR or the user data dir)")
    b.set_defaults(func=cmd_build_basin)

    s = sub.add_parser("build-static", help="rebuild the static fields from MCD12C1 and ETOPO5")
    s.add_argument("--out", default=None)
    s.set_defaults(func=cmd_build_static)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError) as e:  # ContractError is a ValueError
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
