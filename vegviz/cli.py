"""Command line: the same operations as the library, for batch use.

    vegviz demo           build/open the virtual basin, print its summary, write the overview figure
    vegviz info           summary of a data set (a catalog entry or a Zarr/NetCDF path) or of a domain
    vegviz domain         add, list, show and remove domains (an outlet, a bounding box or a polygon)
    vegviz build-basin    build the virtual basin cache (full or small) of a domain
    vegviz build-static   rebuild the static fields of a domain from the source packages
    vegviz train          train one model (config YAML and/or options), write a run directory
    vegviz evaluate       score a run or an experiment on a period; print the comparison table
    vegviz experiment     train the three models, score them, write the comparison table and figures
    vegviz scenario       build a climate scenario (delta change, or QDM of GCM runs) of a data set; --list
    vegviz project        run trained models on a scenario and its baseline; LAI change and its known-truth skill
    vegviz serve          serve the dashboards (panel serve dashboards/) on 127.0.0.1
    vegviz fetch nldas    download NLDAS-2 hourly forcing (Earthdata login) for a period
    vegviz prepare        build the model-ready data set from NLDAS-2, GLOBMAP and land-cover files
    vegviz sample-archive write a small archive in those files' layouts (NOT observations) to try prepare
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def _open(name: str, seed: int):
    """A data set by catalog entry name or by path; validated (its domain's grid or any window of the lattice)."""
    from . import domains
    from .catalog import open_data
    from .contract import validate

    ds = open_data(name, seed=seed)
    if "time" not in ds.dims:
        return ds
    try:  # stores from before domains carry no name: they are the study's
        grid = domains.get(ds.attrs.get("domain") or "ucrb").grid
    except domains.DomainError:
        grid = None
    full = grid is not None and ds.sizes.get("lat") == grid.nlat and ds.sizes.get("lon") == grid.nlon
    return validate(ds, grid=grid if full else None)


def _virtual_entry(domain: str | None, variant: str = "full") -> str | None:
    """``--domain D`` as a data set: the catalog entry ``virtual_D`` (``virtual_D_small``); D must exist."""
    if domain is None:
        return None
    from .domains import virtual_entry

    return virtual_entry(domain, variant)  # DomainError naming the known domains and `vegviz domain add`


def cmd_demo(args) -> int:
    from . import domains
    from .data.summary import summarize
    from .data.virtual import open_virtual_basin

    dom = domains.get(args.domain)
    t0 = time.perf_counter()
    ds = open_virtual_basin(args.variant, seed=args.seed, domain=dom)
    print(f"opened virtual basin of {dom.name} ({args.variant}) in {time.perf_counter() - t0:.1f} s")
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

    if args.domain is not None:
        if args.dataset is not None or args.realism:
            raise ValueError("info --domain summarises a domain's static fields; a data set (or --realism) goes "
                             f"without it. Fix: `vegviz info --domain {args.domain}`, or `vegviz info "
                             f"virtual_{args.domain} --realism` for its virtual basin")
        from . import domains
        from .data.static import static_for

        dom = domains.get(args.domain)
        print(domain_summary(dom, static_for(dom)))
        return 0
    ds = _open(args.dataset or "virtual_ucrb_small", args.seed)
    print(summarize(ds))
    if args.realism:
        import pandas as pd

        from .data.virtual.diagnostics import realism

        with pd.option_context("display.max_colwidth", 60, "display.width", 160):
            print("\nrealism (inside the mask, whole years):")
            print(realism(ds).to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    return 0


def cmd_build_basin(args) -> int:
    from . import domains
    from .data.virtual import open_virtual_basin

    dom = domains.get(args.domain, args.data_dir)
    t0 = time.perf_counter()
    ds = open_virtual_basin(args.variant, seed=args.seed, data_dir=args.data_dir, domain=dom)
    print(f"virtual basin of {dom.name} {args.variant!r} (seed {args.seed}) ready in {time.perf_counter() - t0:.1f} "
          f"s: {ds.sizes['time']} days on {ds.sizes['lat']} x {ds.sizes['lon']} cells")
    return 0


def cmd_build_static(args) -> int:
    from . import domains
    from .data.static import STATIC_FILE, SourceMissing, build_static, missing_sources, static_for, write_static

    dom = domains.get(args.domain)
    missing = missing_sources()
    if missing:  # before anything is removed or written
        raise SourceMissing(f"cannot build the static fields of {dom.name!r}:\n  " + "\n  ".join(missing))
    if dom.name == "ucrb" or args.out:
        ds = build_static(dom)
        path = write_static(ds, Path(args.out) if args.out else STATIC_FILE)
    else:  # refresh the domain's cache: static_for writes it (atomically) where every command finds it
        for old in _static_cache_files(dom.name):
            old.unlink(missing_ok=True)
        ds = static_for(dom)
        path = _static_cache_files(dom.name)[0]
    print(f"wrote {path}")
    print(domain_summary(dom, ds))
    return 0


# ---------------------------------------------------------------------------------------------- domains

def _static_cache_files(name: str) -> list[Path]:
    """Cached static-field files of the domain ``name`` in the data directory (static/NAME-KEY.nc)."""
    from .paths import cache_dir

    folder = cache_dir() / "static"
    return sorted(p for p in folder.glob(f"{name}-*.nc") if p.stem[len(name) + 1:].isalnum()) if folder.is_dir() \
        else []


def _cached_static(dom):
    """The domain's static fields when at hand without building them (committed or cached), else None."""
    from .data.static import load_static, static_key

    if dom.name == "ucrb":
        return load_static()
    from .paths import cache_dir

    try:
        path = cache_dir() / "static" / f"{dom.name}-{static_key(dom)}.nc"
    except OSError:  # e.g. a polygon file that has gone
        return None
    return load_static(path) if path.exists() else None


def _basin_numbers(dom, static) -> str:
    """'N basin cells, A km2' and, for a gauge or an --area, the error against its drainage area."""
    mask = static["mask"].values.astype(bool)
    area = float(static["cell_area"].values[mask].sum()) / 1e6
    text = f"{int(mask.sum())} basin cells, {area:,.0f} km2"
    ref = dom.basin.gauge_area_km2
    if ref:
        text += f" ({100 * (area / ref - 1):+.1f} % against {ref:,.0f} km2" + (
            f", {dom.basin.gauge})" if dom.basin.gauge else ", the --area given)")
    return text


def domain_summary(dom, static) -> str:
    """A domain's window, basin and static fields (cells, basin cells and area, land-cover shares, elevation)."""
    import numpy as np

    from .contract import IGBP_CLASSES
    from .data.summary import _degrees

    w, e, s, n = dom.extent
    lines = [f"{dom.name}: {dom.title} ({'built in' if dom.builtin else 'user domain'})",
             f"window : {dom.grid.nlat} x {dom.grid.nlon} = {dom.grid.nlat * dom.grid.nlon} cells of the NLDAS-2 "
             f"1/8 degree grid, {_degrees(s, 'N', 'S')}..{_degrees(n, 'N', 'S')}, "
             f"{_degrees(w, 'E', 'W')}..{_degrees(e, 'E', 'W')} (outer edges)",
             f"basin  : {dom.basin.describe()}"]
    if static is None:
        lines.append(f"static : not built yet. Fix: `vegviz build-static --domain {dom.name}` (MCD12C1 + ETOPO5)")
        return "\n".join(lines)
    mask = static["mask"].values.astype(bool)
    land = static["landcover"].values != 0
    lines.append(f"cells  : {mask.size} in the window, {int(land.sum())} land, {_basin_numbers(dom, static)}")
    if mask.any():
        weight = static["cell_area"].values * mask
        if "landcover_fraction" in static:  # area-weighted class shares inside the basin
            frac = static["landcover_fraction"].transpose("lc_class", "lat", "lon").values
            codes = static["lc_class"].values
            share = (frac * weight).sum(axis=(1, 2)) / weight.sum()
        else:  # majority classes, by cell area
            lc = static["landcover"].values
            codes = np.unique(lc[mask])
            share = np.array([weight[lc == c].sum() for c in codes]) / weight.sum()
        order = [i for i in np.argsort(-share) if share[i] >= 0.005]
        lines.append("cover  : " + ", ".join(f"{IGBP_CLASSES.get(int(codes[i]), codes[i])} {100 * share[i]:.0f} %"
                                             for i in order) + " (area shares inside the basin)")
        z = static["elevation"].values[mask]
        lines.append(f"elev.  : {np.nanmean(z):,.0f} m mean, {np.nanmin(z):,.0f}..{np.nanmax(z):,.0f} m inside "
                     "the basin")
    p = dom.periods
    lines.append("periods: " + ", ".join(f"{k} {v[0]}..{v[1]}" for k, v in p.items()))
    return "\n".join(lines)


def _numbers(text: str, n: int, option: str, form: str, example: str) -> list[float]:
    """``--bbox 1,2,3,4`` -> [1.0, 2.0, 3.0, 4.0]; anything else a ValueError naming the option and the form."""
    import math

    parts = [t.strip() for t in text.split(",")]
    try:
        values = [float(t) for t in parts]
    except ValueError:
        values = None
    if values is None or len(values) != n or not all(math.isfinite(v) for v in values):
        what = f"a number {form}" if n == 1 else f"{n} numbers {form}, comma-separated without spaces"
        raise ValueError(f"{option} {text!r}: expected {what}. Fix: e.g. {option} {example}")
    return values


def cmd_domain_add(args) -> int:
    from . import domains
    from .data.static import SourceMissing, static_for

    name = domains.check_name(args.name)
    known = domains.all_domains()
    if name in known:
        if known[name].builtin:
            raise domains.DomainError(f"domain {name!r} is built in. Fix: choose another name")
        raise domains.DomainError(f"domain {name!r} exists already ({domains.user_file()}). Fix: choose another "
                                  f"name, or `vegviz domain remove {name}` first")
    if args.area is not None and not args.outlet:
        raise ValueError("--area is the drainage area of a gauge at an --outlet. Fix: drop --area, or use --outlet")
    area = None
    if args.area is not None:
        (area,) = _numbers(args.area, 1, "--area", "(km2)", "20533")
        if not area > 0:
            raise ValueError(f"--area {args.area}: a drainage area must be positive (km2). Fix: e.g. --area 20533")
    if args.outlet:
        lat, lon = _numbers(args.outlet, 2, "--outlet", "LAT,LON", "36.865,-111.588")
        dom = domains.from_outlet(name, lat, lon, title=args.title or "", gauge_area_km2=area)
    elif args.bbox:
        w, s, e, n = _numbers(args.bbox, 4, "--bbox", "W,S,E,N (degrees, west negative)",
                              "-107.5,37.5,-105.5,38.5")
        dom = domains.from_bbox(name, w, s, e, n, title=args.title or "")
    else:
        dom = domains.from_polygon(name, args.polygon, title=args.title or "")  # copies it into the data dir
    written = [Path(dom.basin.polygon)] if dom.basin.kind == "polygon" else []
    static, missing = None, None
    try:
        try:
            static = static_for(dom)  # before registering: a domain with no land in its basin is refused
            written += _static_cache_files(name)
        except SourceMissing as err:
            missing = str(err)
        if static is not None and not int(static["mask"].sum()):
            raise domains.DomainError(f"the basin of {name!r} ({dom.basin.describe()}) holds no land cell (its "
                                      "cells are water in MODIS land cover). Fix: choose a basin over land")
        path = domains.add(dom)
    except BaseException:
        for f in written:  # write nothing on a refusal: the copied polygon and the static fields go
            f.unlink(missing_ok=True)
            try:
                f.parent.rmdir()  # and their folders, when this made them
            except OSError:
                pass
        raise
    print(f"added domain {name!r} to {path}")
    print(domain_summary(dom, static))
    if dom.basin.kind == "outlet" and args.area is None:
        print("note: without --area the outlet snaps to the largest stream near the point; give a gauge's "
              "published drainage area (--area KM2) to pick the stream of that size and to see the error against it")
    if missing:
        print(f"warning: the domain is registered, but its static fields cannot be built here:\n{missing}\n"
              f"Then: `vegviz build-static --domain {name}`", file=sys.stderr)
    print(f"next: vegviz info --domain {name}; vegviz build-basin --domain {name} --variant small; "
          f"vegviz train --domain {name}; vegviz prepare --domain {name} --nldas ... --globmap ... --out {name}.zarr")
    return 0


def cmd_domain_list(args) -> int:
    from . import domains

    rows = [("name", "kind", "cells", "basin", "extent (outer edges)", "title")]
    for dom in domains.all_domains().values():
        w, e, s, n = dom.extent
        static = None
        try:
            static = _cached_static(dom)
        except (OSError, ValueError):
            pass
        basin = dom.basin.kind + (f", {int(static['mask'].sum())} cells" if static is not None else "")
        rows.append((dom.name, "built-in" if dom.builtin else "user", f"{dom.grid.nlat} x {dom.grid.nlon}", basin,
                     f"{s:.3f}..{n:.3f} N, {w:.3f}..{e:.3f} E", dom.title))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.ljust(wd) for c, wd in zip(r, widths)) + "  " + r[-1])
    print(f"\nuser domains: {domains.user_file()}; add one: vegviz domain add NAME --outlet LAT,LON | --bbox W,S,E,N "
          "| --polygon FILE")
    return 0


def cmd_domain_show(args) -> int:
    import yaml

    from . import domains

    dom = domains.get(args.name)
    print(domain_summary(dom, _cached_static(dom)))
    print(f"data   : virtual_{dom.name}, virtual_{dom.name}_small (catalog); --domain {dom.name} in info, train, "
          "experiment, build-basin, build-static, demo, prepare")
    print(f"\ndefinition ({'vegviz.domains.BUILTIN' if dom.builtin else domains.user_file()}):")
    print(yaml.safe_dump({dom.name: dom.to_dict()}, sort_keys=False).rstrip())
    return 0


def cmd_domain_remove(args) -> int:
    from . import domains
    from .paths import cache_dir

    domains.remove(args.name)
    gone = _static_cache_files(args.name)
    for f in gone:
        f.unlink(missing_ok=True)
    print(f"removed domain {args.name!r} from {domains.user_file()}"
          + (f" and its cached static fields ({len(gone)} file{'s' * (len(gone) != 1)})" if gone else ""))
    stores = sorted(cache_dir().glob(f"virtual_{args.name}-*.zarr"))
    if stores:
        print("its virtual-basin stores are kept (delete them by hand if unwanted): "
              + ", ".join(str(p) for p in stores))
    return 0


def _config(args):
    """The Config of --config FILE, then the command-line options, then --set KEY=VALUE overrides."""
    import yaml

    from .training import Config, ConfigError

    d = {}
    preset = getattr(args, "preset", None)
    if preset:
        from .presets import preset_settings

        d = preset_settings(preset)
    if args.config:
        path = Path(args.config)
        if not path.exists():
            raise FileNotFoundError(f"--config {path}: no such file. Fix: give the path of a config YAML "
                                    "(a run's config.yaml works)")
        try:
            f = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"--config {path}: not valid YAML ({e})") from None
        if not isinstance(f, dict):
            raise ConfigError(f"--config {path}: expected a mapping of keys to values")
        if "config" in f and "models" in f:  # an experiment.yaml: its models too, unless --models says otherwise
            if getattr(args, "models", "unset") is None:
                args.models = ",".join(f["models"])
            if getattr(args, "members", "unset") is None:
                args.members = int(f.get("members", 1))
            f = f["config"]
        d = _merged(d, f)
    for key in ("data", "model", "name", "device", "seed", "split"):
        value = getattr(args, key, None)
        if value is not None:
            d[key] = value
    domain_data = _virtual_entry(getattr(args, "domain", None))
    if domain_data is not None:
        if getattr(args, "data", None) is not None and args.data != domain_data:
            raise ValueError(f"--data {args.data} and --domain {args.domain} name two data sets. Fix: give one of "
                             f"them (--domain {args.domain} is --data {domain_data})")
        d["data"] = domain_data
    if preset and getattr(args, "data", None) is None and (domain_data is not None or "data" not in d):
        from .presets import preset_data

        d["data"] = preset_data(preset, getattr(args, "domain", None))  # its virtual basin, of --domain's domain
    if getattr(args, "epochs", None) is not None:
        d["max_epochs"] = args.epochs
    for item in getattr(args, "set", None) or ():
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set optimizer.lr=0.003")
        target = d
        *parents, leaf = key.split(".")
        for part in parents:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise ConfigError(f"--set {item!r}: {part} is not a group of settings")
        target[leaf] = yaml.safe_load(text)
    data = d.pop("data", Config.data)
    return Config.for_data(data, **d)


def _merged(base: dict, over: dict) -> dict:
    """``over`` on top of ``base``, group by group (a preset's hparams.filters survives a file's hparams.kernel)."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _members(args) -> int:
    from .training.ensemble import check_members

    return check_members(1 if args.members is None else args.members)


def cmd_train_members(args, cfg, members: int) -> int:
    """--members N: the runs <name>-m0 .. <name>-m<N-1> (seed + k), resumed or skipped when done, like experiments."""
    from .experiment import train_or_resume
    from .training.data import open_data
    from .training.ensemble import member_config, member_name
    from .training.run import default_run_dir

    base = Path(args.run_dir) if args.run_dir else default_run_dir(cfg)
    ds = open_data(cfg.data, seed=cfg.seed)
    for k in range(members):
        run_dir = base.parent / member_name(base.name, k)
        run, _ = train_or_resume(member_config(cfg, k, name=run_dir.name), run_dir, ds,
                                 progress=not args.no_progress)
        best = run.best
        print(f"run: {run.path} (seed {run.config.seed}; best epoch {int(best['epoch'])}: median validation NSE "
              f"{best['val_nse_median']:.3f})")
    print(f"next: vegviz experiment --members {members} ... combines members into an ensemble mean and spread")
    return 0


def _torchrun(nproc: int, argv: list[str]) -> int:
    """``vegviz train --nproc N ...``: the same command on N ranks of this machine, started by torchrun."""
    import subprocess

    if nproc < 1:
        raise ValueError(f"--nproc {nproc}: the number of ranks must be at least 1")
    if os.environ.get("WORLD_SIZE"):
        raise ValueError("--nproc inside a torchrun job: the ranks are already started. Fix: drop --nproc")
    rest, skip = [], False
    for a in argv:  # this command without --nproc
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            rest.append(a)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
           "-m", "vegviz", *rest]
    print("running: " + " ".join(cmd[1:]), file=sys.stderr)
    return subprocess.call(cmd)


def cmd_train(args) -> int:
    import math

    from .training import train
    from .training.distributed import from_env
    from .training.run import default_run_dir

    cfg = _config(args)
    if args.nproc is not None:
        import torch

        from .training.distributed import World, check_world

        # refused here, before the ranks start (each would load torch and the data to say the same)
        check_world(World(0, 0, args.nproc), cfg.batch_size, torch.device("cpu"))
        return _torchrun(args.nproc, args.argv)
    members = _members(args)
    if members > 1:
        return cmd_train_members(args, cfg, members)
    run_dir = Path(args.run_dir) if args.run_dir else None
    if args.resume:  # the library starts afresh when there is nothing to resume; a user asking for it means a run
        if run_dir is None and not cfg.name:
            raise ValueError("--resume needs the run: Fix: add --name NAME or --run-dir FOLDER of an earlier run")
        last = (run_dir or default_run_dir(cfg)) / "checkpoints" / "last.pt"
        if not last.exists():
            raise FileNotFoundError(f"--resume: there is no checkpoint to resume at {last}. Fix: check the run's "
                                    "name or folder (`ls` the runs directory), or drop --resume to start a new run")
    from .training.estimate import TimeEstimate

    main = from_env().main  # torchrun: rank 0 alone says how long it takes and reports
    # how long these settings take here, said after the first batches
    estimate = [TimeEstimate()] if main else []
    run = train(cfg, run_dir, resume=args.resume, progress=not args.no_progress, subscribers=estimate)
    if not main:
        return 0
    h, best = run.history, run.best
    print(f"run: {run.path}")
    if best is not None:
        nse = best["val_nse_median"]
        print(f"{len(h)} epoch{'s' if len(h) != 1 else ''}; best epoch {int(best['epoch'])}: val loss "
              f"{best['val_loss']:.4f}, median validation NSE {nse:.3f} ({best['device']})")
        if not math.isfinite(nse):
            from .evaluation import MIN_OBS, period_label

            print(f"  (NaN: no basin cell has the {MIN_OBS} satellite composites an NSE needs in the "
                  f"{period_label(run.config.periods.validation, 'validation period')}, or their LAI is constant; "
                  "a longer data set gives a score)")
    if run.predictions_path.exists():
        print(f"predictions: {run.predictions_path}")
    print(f"next: vegviz evaluate {run.path}")
    return 0


def _find_run(target: str) -> Path:
    from .training import runs_root

    for path in (Path(target).expanduser(), runs_root() / target):
        if path.is_dir():
            return path
    raise FileNotFoundError(f"{target!r} is neither a run/experiment folder nor a name under {runs_root()}. "
                            "Fix: pass the folder printed by `vegviz train` or `vegviz experiment`")


def cmd_evaluate(args) -> int:
    from .training.lock import RunLock, command_line

    path = _find_run(args.run)
    # its scores and tables are written into the folder: not while another process trains it
    with RunLock(path, f"evaluate {path.name} ({command_line()})"):
        return _evaluate(args, path)


def _evaluate(args, path) -> int:
    from .evaluation import markdown_table
    from .experiment import EXPERIMENT_FILE, Experiment, evaluate_experiment, period_report, score_period
    from .io import write_atomic
    from .training import Run
    from .training.data import open_data

    experiment = (path / EXPERIMENT_FILE).exists()
    if experiment and args.period == "test":
        # the experiment's own outputs: comparison.md (validation and test), comparison.csv and figures (test)
        obs = open_data(args.data) if args.data else None
        evaluate_experiment(path, obs, figures=_figures(args))
        print(f"\nwrote {path / 'comparison.md'}")
        return 0
    if experiment:  # another period: its own files, the test outputs stay as they are
        exp = Experiment.open(path)
        pred, cfg = exp.predictions, exp.config
        obs = open_data(args.data) if args.data else exp.observations()
    else:
        run = Run(path)
        pred = run.predictions
        if pred is None:
            raise FileNotFoundError(f"{path} has no predictions.nc (training stopped before the end?). "
                                    f"Fix: vegviz train --config {path / 'config.yaml'} --resume --run-dir {path}")
        cfg = run.config
        obs = open_data(args.data or cfg.data, seed=cfg.seed)
    scores, table = score_period(pred, obs, cfg, args.period, path)
    from .evaluation import period_label

    print(f"{period_label(getattr(cfg.periods, args.period), args.period + ' period')} (the run's own split), "
          "median per-cell skill over the basin mask:")
    write_atomic(path / f"comparison_{args.period}.md", (markdown_table(table) + "\n").encode())
    print(period_report(scores, table))
    print(f"\nwrote {path / f'scores_{args.period}.nc'} and {path / f'comparison_{args.period}.md'} "
          "(with the medians per vegetation type)")
    return 0


def cmd_experiment(args) -> int:
    from .experiment import DEFAULT_MODELS, RunsFailed, run_experiment

    cfg = _config(args)
    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else list(DEFAULT_MODELS)
    root = Path(args.runs_dir) if args.runs_dir else None
    t0 = time.perf_counter()
    try:
        exp = run_experiment(cfg, models=models, name=args.name or cfg.name, root=root, members=_members(args),
                             progress=not args.no_progress, figures=_figures(args),
                             parallel=False if args.parallel is None else args.parallel)
    except RunsFailed as e:  # --parallel: the other runs finished and are kept
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"\nexperiment {exp.path} finished in {(time.perf_counter() - t0) / 60:.1f} min; "
          f"table: {exp.path / 'comparison.md'}")
    return 0


def cmd_compare(args) -> int:
    from .evaluation import markdown_table
    from .experiment import compare_experiments

    print(markdown_table(compare_experiments(args.a, args.b)))
    return 0


def _monthly_option(text: str | None, option: str):
    """``--dt 2`` -> 2.0, ``--dt 1,1,2,...`` (12 values, January first) -> a tuple; None stays None."""
    if text is None:
        return None
    try:
        values = [float(t) for t in text.split(",")]
    except ValueError:
        raise ValueError(f"{option} {text!r}: expected a number or 12 comma-separated monthly numbers (January "
                         f"first). Fix: e.g. {option} 2 or {option} " + ",".join(["1"] * 12)) from None
    return values[0] if len(values) == 1 else tuple(values)


def cmd_scenario(args) -> int:
    from .scenarios import (DeltaChange, build_scenario, change_summary, list_scenarios, open_baseline,
                            open_scenario, scenarios_dir)

    if args.list:
        names = list_scenarios()
        if not names:
            print(f"no scenarios in {scenarios_dir()}; build one with `vegviz scenario NAME --data D --period "
                  "2009:2016 --dt 2`")
        for name in names:
            with open_scenario(name) as ds:
                a = ds.attrs
                print(f"{name}: {a.get('scenario_method')} on {a.get('baseline')} {a.get('baseline_start')}.."
                      f"{a.get('baseline_end')}: {a.get('scenario_change')}")
        return 0
    if not args.name or not args.data:
        raise ValueError("scenario: give a NAME and --data. Fix: `vegviz scenario warm2 --data virtual_ucrb --period "
                         "2009:2016 --dt 2 --precip 0.9`, or `vegviz scenario --list`")
    deltas = {"dt": _monthly_option(args.dt, "--dt"), "dt_min": _monthly_option(args.dt_min, "--dt-min"),
              "precip": _monthly_option(args.precip, "--precip"), "swdown": _monthly_option(args.swdown, "--swdown")}
    given = {k: v for k, v in deltas.items() if v is not None}
    if args.gcm_hist or args.gcm_future:
        if given:
            raise ValueError(f"scenario: --gcm-hist/--gcm-future and {', '.join('--' + k.replace('_', '-') for k in given)} "
                             "build different scenarios. Fix: use either the GCM files or the deltas")
        if not (args.gcm_hist and args.gcm_future):
            raise ValueError("scenario: quantile delta mapping needs both --gcm-hist and --gcm-future. Fix: give the "
                             "GCM's historical and future runs (NetCDF)")
        from .scenarios import GCMScenario

        names = dict(_key_value(kv, "--gcm-var") for kv in args.gcm_var or [])
        change = GCMScenario(args.gcm_hist, args.gcm_future, variables=names)
    else:
        change = DeltaChange(**given)
    t0 = time.perf_counter()
    path = build_scenario(args.name, args.data, args.period, change, overwrite=args.overwrite)
    print(f"wrote scenario {args.name!r} ({change.method}) in {time.perf_counter() - t0:.1f} s: {path}")
    scen = open_scenario(path)
    print(f"{scen.attrs['scenario_change']}\nbaseline {scen.attrs['baseline']} "
          f"{scen.attrs['baseline_start']}..{scen.attrs['baseline_end']}; mean change inside the mask:")
    print(change_summary(scen, open_baseline(scen)).to_string(float_format=lambda v: f"{v:.4g}"))
    return 0


def _key_value(text: str, option: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key or not value:
        raise ValueError(f"{option} {text!r}: expected NAME=GCMNAME. Fix: e.g. {option} precip=prAdjust")
    return key.strip(), value.strip()


def cmd_project(args) -> int:
    import pandas as pd

    from .evaluation import markdown_table
    from .evaluation.projection import skill_markdown
    from .scenarios.projection import project

    proj = project(args.source, args.scenario, device=None if args.device == "auto" else args.device,
                   root=args.runs_dir, overwrite=args.overwrite, threads=args.threads)
    folder = Path(proj.attrs["path"])
    summary = pd.read_csv(folder / "summary.csv")
    mean = summary[(summary["quantity"] == "annual_mean")]
    print(f"\nprojection {folder.name}: annual mean LAI (m2 m-2) over the basin, baseline and change "
          f"(scenario - baseline, per model), {int(proj['years'].max())} whole years")
    table = mean[mean["grouping"] == "all"].set_index("model")[["n_cells", "baseline", "delta"]]
    print(markdown_table(table))
    veg = mean[mean["grouping"] == "vegetation"].pivot(index="group", columns="model", values="delta")
    if len(veg):
        print("\nchange of the annual mean per vegetation type:")
        print(markdown_table(veg[list(table.index)]))
    skill = folder / "skill.csv"
    if skill.exists():
        print("\nknown-truth skill of the change of the annual mean (virtual basin: the true vegetation re-run on "
              "both forcings):")
        print(skill_markdown(pd.read_csv(skill)))
    print(f"\nwrote {folder} (projection.nc, summary.csv{', skill.csv' if skill.exists() else ''}, provenance.yaml)")
    return 0


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def serve_command(args) -> tuple[list[str], dict]:
    """The ``panel serve`` command line and environment of ``vegviz serve``, checked.

    A server on another address than this machine's loopback is reachable from other machines, and
    whatever page a browser shows could open a live session on it (a websocket) and train models or
    read the runs directory. So such a server needs the browser origins that may connect, named one by
    one (``--allow-origin host:port``, repeated; no wildcard): a websocket from any other origin is
    refused (HTTP 403) by Bokeh's origin check. ``--basic-auth`` adds Panel's password login.
    """
    from .catalog import REPO_CATALOG

    target = Path(args.path) if args.path else REPO_CATALOG.parent.parent / "dashboards"
    if not target.exists():
        raise FileNotFoundError(f"{target} does not exist. Fix: run from a vegviz checkout, or pass the folder "
                                "or notebook to serve")
    remote = args.address not in LOOPBACK
    origins = list(args.allow_origin or [])
    if remote and not origins:
        raise ValueError(f"--address {args.address} serves other machines, and without named origins a web page "
                         "from any site could open a session on this server and drive it. Fix: name the address "
                         f"your users type, e.g. --allow-origin myhost.example.org:{args.port} (repeat for more), "
                         "and consider --basic-auth PASSWORD_FILE; or keep the default --address 127.0.0.1 and use "
                         f"an SSH tunnel (ssh -L {args.port}:127.0.0.1:{args.port} host)")
    for o in origins:
        if "*" in o or not o.strip() or "/" in o:
            raise ValueError(f"--allow-origin {o!r}: name one browser origin as host or host:port (no scheme, "
                             f"no wildcard: '*' would let any site in). Fix: e.g. --allow-origin myhost:{args.port}")
    if origins and not remote:
        raise ValueError(f"--allow-origin without --address: the server listens on {args.address}, which only this "
                         "machine reaches. Fix: add --address 0.0.0.0 (or this machine's address)")
    if args.basic_auth and not remote:
        raise ValueError("--basic-auth without --address: a server only this machine reaches needs no login. "
                         "Fix: add --address and --allow-origin, or drop --basic-auth")
    _check_port(args.address, args.port)
    cmd = [sys.executable, "-m", "panel", "serve", str(target), "--address", args.address, "--port", str(args.port)]
    for o in origins:
        cmd += ["--allow-websocket-origin", o]
    if args.basic_auth:
        import secrets

        # Panel signs its login cookie: a fresh secret per server start logs everyone out on restart
        cmd += ["--basic-auth", args.basic_auth, "--cookie-secret", secrets.token_hex(32)]
    if args.show:
        cmd.append("--show")
    env = dict(os.environ)
    if remote:
        env["VEGVIZ_ALLOW_REMOTE"] = "1"  # the user named the origins: the app's guard lets their browsers in
    if getattr(args, "threads", None) is not None:
        if args.threads < 0:
            raise ValueError(f"--threads {args.threads}: a number of threads is 0 or more. Fix: e.g. --threads 8 "
                             "(0: no thread pool)")
        from .dashboards.app import SERVER_THREADS_ENV

        env[SERVER_THREADS_ENV] = str(args.threads)  # read by the app's server hook (dashboards/app_hooks.py)
    return cmd, env


def cmd_serve(args) -> int:
    cmd, env = serve_command(args)
    if args.address not in LOOPBACK:
        print(f"warning: serving on {args.address} to browsers from {', '.join(args.allow_origin)}"
              + ("" if args.basic_auth else " without a login (--basic-auth adds one)")
              + ": they can train models and read the runs directory", file=sys.stderr)
    print(" ".join(a if a != args.basic_auth else "***" for a in cmd), flush=True)
    # the server replaces this process: a signal to `vegviz serve` (SIGTERM, Ctrl-C) reaches panel itself,
    # and no orphaned server keeps the port
    os.execve(sys.executable, cmd, env)


def _check_day(text: str | None, option: str) -> None:
    """A date option that is not a calendar day stops with the option's name, before any work."""
    import datetime as dt

    if text is None:
        return
    try:
        dt.date.fromisoformat(text)
    except ValueError as e:
        raise ValueError(f"{option} {text!r} is not a day YYYY-MM-DD ({e}). Fix: e.g. {option} 2003-01-01") from None


def _check_port(address: str, port: int) -> None:
    import socket

    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family) as s:
        try:
            s.bind((address, port))
        except OSError as e:
            raise ValueError(f"cannot listen on {address}:{port} ({e.strerror}; another server?). "
                             f"Fix: --port {port + 1}, or stop the server that holds it") from None


def cmd_fetch(args) -> int:
    from .data import nldas

    _check_day(args.start, "--start")
    _check_day(args.end, "--end")
    plan = nldas.plan_granules(args.start, args.end, version=args.version)
    out = Path(args.out)
    if args.dry_run:
        have = sum((out / g.name).is_file() for g in plan)
        print(f"{len(plan)} granules ({plan[0].name} ... {plan[-1].name}), {have} already in {out}")
        for g in plan:
            print(g.url)
        return 0
    t0 = time.perf_counter()
    paths = nldas.fetch(args.start, args.end, out, version=args.version)
    print(f"{len(paths)} hourly files in {out} ({time.perf_counter() - t0:.0f} s)")
    return 0


def _grid(text: str | None):
    """--grid: "study" (the UCRB grid), "sample" (the sample archive's window) or LAT0,LON0,NLAT,NLON;
    None (no --grid): the domain's whole grid."""
    from .data.samples import SAMPLE_GRID
    from .grid import UCRB, Grid, on_nldas_lattice

    if text is None:
        return None
    if text == "study":
        return UCRB
    if text == "sample":
        return SAMPLE_GRID
    try:
        lat0, lon0, nlat, nlon = text.split(",")
        g = Grid(float(lat0), float(lon0), int(nlat), int(nlon), name=f"window {text}")
    except ValueError:
        raise ValueError(f"--grid {text!r}: expected study, sample or LAT0,LON0,NLAT,NLON (south-west cell "
                         "centre and size, e.g. 38.5625,-108.4375,12,12)") from None
    if not (on_nldas_lattice(g.lat) and on_nldas_lattice(g.lon)):
        raise ValueError(f"--grid {text!r}: the south-west cell centre is not on the NLDAS-2 1/8-degree lattice "
                         "(centres end in .0625, .1875, ...). Fix: e.g. 38.5625,-108.4375,12,12")
    return g


def cmd_prepare(args) -> int:
    from .data.prepare import prepare_real

    _check_day(args.start, "--start")
    _check_day(args.end, "--end")
    client = None
    if args.scheduler:
        from distributed import Client

        client = Client(args.scheduler)  # the aggregation's dask tasks then run on that cluster
    try:
        prepare_real(args.nldas, args.globmap, args.out, landcover=args.landcover,
                     landcover_product=args.landcover_product, grid=_grid(args.grid), domain=args.domain,
                     start=args.start,
                     end=args.end, name=args.name, daily_lai=args.daily_lai,
                     allow_missing_hours=args.allow_missing_hours, overwrite=args.overwrite)
    finally:
        if client is not None:
            client.close()
    return 0


def cmd_sample(args) -> int:
    from .data.samples import write_sample_archive

    _check_day(args.start, "--start")
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} is not empty. Fix: choose a new folder")
    r = write_sample_archive(out, start=args.start, days=args.days)
    print(f"sample archive (NOT observations) for {r['start']}..{r['end']} in {out}\n"
          f"next: vegviz prepare --nldas {r['nldas']} --globmap {r['globmap']} --grid sample --out sample.zarr")
    return 0


def _figure_options(p: argparse.ArgumentParser, who: str = "") -> None:
    from .experiment import FIGURE_FORMATS

    p.add_argument("--figures", default=",".join(FIGURE_FORMATS), metavar="FORMATS",
                   help=f"{who}the formats of the study's panels a-d in <experiment>/figures, comma-separated "
                        f"(default: {','.join(FIGURE_FORMATS)}: HTML to explore, PNG and SVG for papers)")
    p.add_argument("--no-figures", action="store_true", help=f"{who}skip the figures")


def _figures(args) -> tuple[str, ...]:
    from .experiment import figure_formats

    return () if args.no_figures else figure_formats(args.figures)


def _training_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", choices=("quick", "study"),
                   help="named settings: quick = minutes on a laptop CPU (the small virtual basin, 8 filters, 90-day "
                        "windows, 3 epochs), study = the study's (full basin, 365-day windows); --config and the "
                        "options below override it (vegviz.presets)")
    p.add_argument("--config", help="configuration YAML (a run's config.yaml works); options below override it")
    p.add_argument("--data", help="catalog entry (virtual_ucrb, virtual_ucrb_small) or path to a Zarr/NetCDF store "
                                  "(default: virtual_ucrb, or the --config file's)")
    p.add_argument("--domain", help="the virtual basin of this domain: --domain D means --data virtual_D "
                                    "(`vegviz domain list` shows the domains)")
    p.add_argument("--epochs", type=int, help="maximum number of epochs, config max_epochs (default: 25, early "
                                              "stopping after 8 without improvement)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="where to train (default: auto, a GPU if any)")
    p.add_argument("--seed", type=int, help="random seed of weights, windows and data (default: 42)")
    p.add_argument("--split", choices=("temporal", "warm", "cool", "dry", "wet"),
                   help="temporal (the configured periods, default) or a differential split-sample test: train on "
                        "the coolest/warmest/wettest/driest ~60%% of the years, test on the ~20%% at the other end "
                        "(warm = test on the warmest years; see vegviz.training.split)")
    p.add_argument("--members", type=int, help="ensemble: train N seeds (seed + k) of each model as runs "
                   "<name>-m<k>; rerunning trains only the missing members (default: 1, no ensemble)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="any config key, dotted for nested ones (repeatable): --set optimizer.lr=0.003")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a default after the help text, unless the text already names it (or there is none to name)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


def _command(sub, name: str, help: str) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".",
                          formatter_class=_HelpFormatter)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(prog="vegviz", description=__doc__.split("\n\n")[0],
                                epilog="`vegviz COMMAND --help` for a command's options; README.md for a walk-through.")
    p.add_argument("--version", action="version", version=f"vegviz {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    d = _command(sub, "demo", help="build/open the virtual basin and summarise it")
    d.add_argument("--variant", choices=("full", "small"), default="full",
                   help="full: 1981-2016 on 63 x 54 cells; small: 1998-2005, for quick tries")
    d.add_argument("--seed", type=int, default=42, help="seed of the virtual basin's weather and vegetation")
    d.add_argument("--domain", default="ucrb", help="the domain whose virtual basin to open (`vegviz domain list`)")
    d.add_argument("--out", default="artifacts", help="folder for the overview figure")
    d.set_defaults(func=cmd_demo)

    i = _command(sub, "info", help="summary of a data set, or of a domain's static fields")
    i.add_argument("dataset", nargs="?",
                   help="catalog entry (virtual_ucrb, virtual_ucrb_small, or one `prepare` registered) or path "
                        "to a Zarr/NetCDF store (default: virtual_ucrb_small)")
    i.add_argument("--domain", help="instead of a data set: the domain's static fields (cells, basin cells and "
                                    "area, land-cover shares), built once if needed")
    i.add_argument("--seed", type=int, default=42, help="seed of a virtual basin")
    i.add_argument("--realism", action="store_true", help="also print the climate/vegetation realism table")
    i.set_defaults(func=cmd_info)

    b = _command(sub, "build-basin", help="build the virtual basin cache")
    b.add_argument("--variant", choices=("full", "small"), default="full",
                   help="full: 1981-2016 on 63 x 54 cells; small: 1998-2005")
    b.add_argument("--seed", type=int, default=42, help="seed of the weather and vegetation")
    b.add_argument("--domain", default="ucrb", help="the domain whose virtual basin to build (`vegviz domain list`)")
    b.add_argument("--data-dir", default=None, help="cache folder (default: $VEGVIZ_DATA_DIR or the user data dir)")
    b.set_defaults(func=cmd_build_basin)

    s = _command(sub, "build-static", help="rebuild a domain's static fields from MCD12C1 and ETOPO5")
    s.add_argument("--domain", default="ucrb", help="ucrb rewrites the committed vegviz/data/files/ucrb_static.nc; "
                                                    "another domain refreshes its cache in the data directory")
    s.add_argument("--out", default=None, help="file to write instead (default: the committed file for ucrb, "
                                                 "the data directory's cache for another domain)")
    s.set_defaults(func=cmd_build_static)

    dm = _command(sub, "domain", help="add, list, show or remove domains (basins on the NLDAS-2 grid)")
    dsub = dm.add_subparsers(dest="action", required=True)
    da = _command(dsub, "add", help="define a domain by an outlet, a bounding box or a polygon, and build its "
                                    "static fields")
    da.add_argument("name", help="lower-case letters, digits and underscores, starting with a letter (rio_grande)")
    how = da.add_mutually_exclusive_group(required=True)
    how.add_argument("--outlet", metavar="LAT,LON", help="the basin is the catchment of this point (e.g. a stream "
                                                         "gauge), delineated on the registered ETOPO5")
    how.add_argument("--bbox", metavar="W,S,E,N", help="the cells whose centres lie in this box (degrees); every "
                                                       "land cell is the basin")
    how.add_argument("--polygon", metavar="FILE", help="GeoJSON or shapefile (.shp with its .prj) in longitude/"
                                                       "latitude; the basin is the cells at least half inside")
    da.add_argument("--area", metavar="KM2", help="with --outlet: the gauge's published drainage area; "
                                                              "picks the stream of that size and reports the error")
    da.add_argument("--title", help="a title for figures and dashboards (default: from the name)")
    da.set_defaults(func=cmd_domain_add)
    dl = _command(dsub, "list", help="the built-in and user domains")
    dl.set_defaults(func=cmd_domain_list)
    dw = _command(dsub, "show", help="a domain's definition and static summary")
    dw.add_argument("name")
    dw.set_defaults(func=cmd_domain_show)
    dr = _command(dsub, "remove", help="remove a user domain (and its cached static fields)")
    dr.add_argument("name")
    dr.set_defaults(func=cmd_domain_remove)

    t = _command(sub, "train", help="train one model into a run directory")
    _training_options(t)
    t.add_argument("--model", help="convlstm, convlstm_physics or lstm (default: convlstm)")
    t.add_argument("--name", help="run name (folder under the runs directory)")
    t.add_argument("--run-dir", help="run folder (default: <runs directory>/<name>)")
    t.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
    t.add_argument("--nproc", type=int, help="train on N ranks of this machine with DistributedDataParallel (torchrun "
                   "--standalone; gloo on the CPU, one rank per GPU with NCCL); several nodes: start torchrun yourself, "
                   "`torchrun ... -m vegviz train ...`")
    t.set_defaults(func=cmd_train)

    e = _command(sub, "evaluate", help="score a run or an experiment")
    e.add_argument("run", help="run or experiment folder, or its name under the runs directory")
    e.add_argument("--period", default="test", choices=("train", "validation", "test"),
                   help="the run's own split; an experiment's test also rewrites comparison.md/csv and figures")
    e.add_argument("--data", help="observations to score against (default: the run's data set)")
    _figure_options(e, "experiments: ")
    e.set_defaults(func=cmd_evaluate)

    x = _command(sub, "experiment", help="train and compare the three models")
    _training_options(x)
    x.add_argument("--models", help="comma-separated model names (default: an --config experiment.yaml's, "
                                    "else convlstm,convlstm_physics,lstm)")
    x.add_argument("--name", help="experiment name (folder under the runs directory); rerun it to resume")
    x.add_argument("--runs-dir", help="parent folder (default: $VEGVIZ_RUNS_DIR or the user data dir)")
    _figure_options(x)
    x.add_argument("--parallel", nargs="?", const=True, type=int, metavar="N",
                   help="train the runs (models x members) concurrently, each in a process of its own with its log "
                        "in <run>/train.log, at most N at a time (default N: one per GPU, each pinned to its own; "
                        "on the CPU one per core, each with cores/N threads unless num_threads is set); a failed run "
                        "leaves the others to finish, and a rerun resumes it (default: one after another)")
    x.set_defaults(func=cmd_experiment)

    c = _command(sub, "compare", help="median test NSE of two experiments side by side (e.g. temporal vs "
                                      "--split warm)")
    c.add_argument("a", help="experiment folder, or its name under the runs directory")
    c.add_argument("b", help="the other experiment")
    c.set_defaults(func=cmd_compare)

    c = _command(sub, "scenario", help="build a climate scenario (delta change or QDM of GCM runs), or list them")
    c.add_argument("name", nargs="?", help="scenario name (letters, digits, '_', '-'): <data dir>/scenarios/NAME.zarr")
    c.add_argument("--data", help="baseline: catalog entry or path of a model-ready data set (with lai)")
    c.add_argument("--period", help="baseline period inside the data, YYYY:YYYY or YYYY-MM-DD:YYYY-MM-DD (default: "
                                     "the data's whole record)")
    c.add_argument("--dt", metavar="K", help="warming added to tair (K): one value or 12 monthly, comma-separated")
    c.add_argument("--dt-min", metavar="K", help="warming added to tmin (default: --dt)")
    c.add_argument("--precip", metavar="FACTOR", help="precipitation factor (0.9 = -10 %%), one or 12 monthly values")
    c.add_argument("--swdown", metavar="FACTOR", help="shortwave radiation factor")
    c.add_argument("--gcm-hist", metavar="NC", help="a GCM's historical run (NetCDF, regular lat/lon grid over the "
                                                    "domain): quantile delta mapping instead of deltas")
    c.add_argument("--gcm-future", metavar="NC", help="the same GCM's future run")
    c.add_argument("--gcm-var", action="append", metavar="NAME=GCMNAME",
                   help="the GCM's name of a variable, repeatable: precip=pr, tair=tas, tmin=tasmin, swdown=rsds")
    c.add_argument("--overwrite", action="store_true", help="replace an existing scenario of that name")
    c.add_argument("--list", action="store_true", help="list the scenarios and what they are")
    c.set_defaults(func=cmd_scenario)

    pj = _command(sub, "project", help="run a trained run's or experiment's models on a climate scenario and its "
                                       "baseline; print the change of LAI (and, on virtual basins, its known-truth skill)")
    pj.add_argument("source", help="run or experiment folder, or its name under the runs directory")
    pj.add_argument("--scenario", required=True, help="scenario name (`vegviz scenario --list`) or store path")
    pj.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                    help="where the models run (default: auto, each run's own setting)")
    pj.add_argument("--threads", type=int, help="CPU threads of the models (default: torch's default, every core)")
    pj.add_argument("--runs-dir", help="runs root whose projections/ folder gets it (default: $VEGVIZ_RUNS_DIR or the "
                                       "user data dir)")
    pj.add_argument("--overwrite", action="store_true", help="replace an existing projection of the same name")
    pj.set_defaults(func=cmd_project)

    v = _command(sub, "serve", help="serve the dashboards on 127.0.0.1 (panel serve dashboards/)")
    v.add_argument("path", nargs="?", help="folder or notebook to serve (default: the repository's dashboards/)")
    v.add_argument("--address", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this "
                   "machine only)")
    v.add_argument("--port", type=int, default=5006, help="port to listen on")
    v.add_argument("--allow-origin", action="append", metavar="HOST[:PORT]",
                   help="a browser origin allowed to connect (required with --address other than 127.0.0.1; "
                        "repeat for more; no wildcards)")
    v.add_argument("--basic-auth", metavar="PASSWORD_OR_FILE",
                   help="require Panel's login: a password, or a JSON file of {user: password}")
    v.add_argument("--threads", type=int, default=None, metavar="N",
                   help="threads that build the sessions' tabs side by side (default 8; 0: one session after "
                        "another on the event loop)")
    v.add_argument("--show", action="store_true", help="open a browser")
    v.set_defaults(func=cmd_serve)

    f = _command(sub, "fetch", help="download source data (NLDAS-2 forcing) for a period")
    f.add_argument("source", choices=("nldas",), help="what to download")
    f.add_argument("--start", required=True, help="first UTC day, YYYY-MM-DD")
    f.add_argument("--end", required=True, help="last UTC day, YYYY-MM-DD (inclusive)")
    f.add_argument("--out", required=True, help="folder for the hourly files (kept files are not fetched again)")
    f.add_argument("--version", default="2.0", choices=("2.0", "002"),
                   help="2.0 = NetCDF (current), 002 = GRIB (the older distribution)")
    f.add_argument("--dry-run", action="store_true", help="list the granules and their URLs, download nothing")
    f.set_defaults(func=cmd_fetch)

    r = _command(sub, "prepare", help="build the model-ready data set from NLDAS-2, GLOBMAP and land-cover files")
    r.add_argument("--nldas", required=True, help="folder with the hourly NLDAS-2 files (.020.nc or .002.grb)")
    r.add_argument("--globmap", required=True, help="folder with the GLOBMAP LAI V3 files (.hdf or .LAI.tif)")
    r.add_argument("--landcover", help="MCD12C1 or MCD12Q1 file (default: the committed MCD12C1 2019)")
    r.add_argument("--landcover-product", default="MCD12C1", choices=("MCD12C1", "MCD12Q1"))
    r.add_argument("--out", required=True, help="the Zarr store to write, e.g. ucrb_real.zarr")
    r.add_argument("--name", help="catalog entry to register (default: the store's name; '' registers nothing)")
    r.add_argument("--domain", help="the domain (`vegviz domain list`) whose grid, static fields and basin mask "
                                    "the data set gets (default: ucrb)")
    r.add_argument("--grid", help="a window of the domain's grid: study (the UCRB grid), sample (the sample "
                                  "archive's), or LAT0,LON0,NLAT,NLON (default: the domain's whole grid)")
    r.add_argument("--start", help="first day, YYYY-MM-DD (default: the files' first)")
    r.add_argument("--end", help="last day, YYYY-MM-DD (default: the files' last)")
    r.add_argument("--daily-lai", action="store_true", help="also write lai_daily (composites interpolated in time)")
    r.add_argument("--allow-missing-hours", type=int, default=0, help="hours a day may lack (default 0)")
    r.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    r.add_argument("--scheduler", help="dask.distributed scheduler address to run the aggregation on")
    r.set_defaults(func=cmd_prepare)

    m = _command(sub, "sample-archive", help="write a small NLDAS-2 + GLOBMAP sample archive (NOT observations)")
    m.add_argument("out", help="an empty or new folder")
    m.add_argument("--start", default="2003-04-01", help="first day, YYYY-MM-DD")
    m.add_argument("--days", type=int, default=120, help="number of days (400 or more for data that can be "
                                                         "scored: 10 composites per period)")
    m.set_defaults(func=cmd_sample)
    return p


#: options whose value may start with a minus (a western longitude): argparse would take it for an option
_SIGNED_VALUE_OPTIONS = ("--bbox", "--outlet", "--grid", "--dt", "--dt-min")


def _join_signed_values(argv: list[str]) -> list[str]:
    """``--bbox -108,38,-107,39`` -> ``--bbox=-108,38,-107,39``, so that argparse reads it as the value."""
    import re

    out, i = [], 0
    while i < len(argv):
        if argv[i] in _SIGNED_VALUE_OPTIONS and i + 1 < len(argv) and re.match(r"-[0-9.]", argv[i + 1]):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def _os_error(e: OSError) -> str:
    """One line for an OSError that reached the command line: the file, the problem and the fix."""
    import errno

    where = e.filename
    if e.errno == errno.ENOSPC:
        return f"disk full{f' at {where}' if where else ''}: free space and rerun; partial outputs were not kept"
    problem = e.strerror or str(e) or type(e).__name__
    if where is None:
        return f"{problem} ({type(e).__name__}). Fix: check the files and folders this command reads and writes"
    if isinstance(e, PermissionError):
        return f"{where}: {problem}. Fix: give this user access to it, or choose another path"
    return f"{where}: {problem}. Fix: check that this path is a readable, undamaged file on a working disk"


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(_join_signed_values(argv))
    args.argv = argv
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError) as e:  # ContractError, DomainError, PolygonError are ValueErrors
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # last resort: a full disk, a file that cannot be read or written
        print(f"error: {_os_error(e)}", file=sys.stderr)
        return 2
    except RuntimeError as e:
        from .data.landcover import SourceMissing
        from .training.distributed import DistError
        from .training.lock import RunBusyError

        if not isinstance(e, (SourceMissing, DistError, RunBusyError)):
            raise
        print(f"error: {e}", file=sys.stderr)  # names the package to install
        return 2


if __name__ == "__main__":
    sys.exit(main())
