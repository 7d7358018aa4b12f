"""Projections: trained models run on a climate scenario and on its baseline, and their change.

::

    from vegviz.scenarios.projection import project, open_projection
    proj = project("study-virtual-ucrb", "warm2")        # an experiment (or run) name/path/object, a scenario
    proj["convlstm"] - proj["convlstm_baseline"]         # daily ΔLAI of one model
    proj["delta_annual_mean"].sel(model="truth")         # the true change (virtual basins)

Every model runs on the scenario and on the baseline over the same days from the same zero
state, so ΔLAI = model(scenario) - model(baseline) cancels the model's own bias. Besides the
trained models the projection holds ``process`` (the scenario's ``lai_process``, recomputed with
the baseline's calibration, against the baseline's) and, on virtual basins, ``truth`` (the true
vegetation model re-run on both forcings, :func:`vegviz.data.virtual.truth.true_lai`).

Ensembles: an experiment with ``members`` > 1 has several runs per model
(:mod:`vegviz.training.ensemble`); the projection's ``<model>`` is the member mean, each member's
Δ maps are kept (model ``<model>-m<k>``) and ``delta_<quantity>_spread`` is their standard
deviation (ddof 1).

Layout (``<runs root>/projections/<source>--<scenario>/``, written in a hidden folder and renamed
into place, so a failed projection leaves nothing)::

    projection.nc     daily <model> and <model>_baseline (m2 m-2) for every model, process and truth;
                      per-cell Δ and baseline summaries delta_<q>, <q>_baseline (model, lat, lon) for
                      q in vegviz.evaluation.projection.QUANTITIES; mask, landcover, aridity_index
    summary.csv       mean Δ per model and quantity: all cells, per vegetation type, per aridity class
    skill.csv         virtual basins: known-truth skill (bias, RMSE, r, sign agreement), same groups
    provenance.yaml   scenario, baseline, runs and their checkpoints (SHA-256), times per step

The baseline predictions are read from a run's stored ``predictions.nc`` instead of recomputed when
they are provably the same computation: same checkpoint (SHA-256), same data (every root attribute
of the baseline equals the stored ``data_*`` one) and the same first day (so the same zero state).
"""
from __future__ import annotations

import os
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..evaluation.projection import QUANTITIES, season_summaries, skill_table
from ..evaluation.scoring import PROCESS, is_synthetic
from .delta import ScenarioError

__all__ = ["PROJECTION", "TRUTH", "list_projections", "open_projection", "project", "projection_dir",
           "projection_name", "projections_root", "summary_table"]

PROJECTIONS = "projections"
PROJECTION = "projection.nc"
TRUTH = "truth"
BASELINE_SUFFIX = "_baseline"


# ----------------------------------------------------------------------------- names and folders

def projections_root(root=None) -> Path:
    """``<runs root>/projections`` (runs root: ``root``, else $VEGVIZ_RUNS_DIR, else the user data dir's runs)."""
    from ..paths import runs_root

    return (Path(root).expanduser() if root else runs_root()) / PROJECTIONS


def projection_name(source: str, scenario: str) -> str:
    """The one rule for a projection's name: ``<experiment or run>--<scenario>``."""
    return f"{source}--{scenario}"


def projection_dir(source: str, scenario: str, root=None) -> Path:
    return projections_root(root) / projection_name(source, scenario)


def list_projections(root=None) -> list[str]:
    """Names of the finished projections under :func:`projections_root`, sorted."""
    folder = projections_root(root)
    return sorted(p.parent.name for p in folder.glob(f"*/{PROJECTION}")) if folder.is_dir() else []


def open_projection(name_or_path, root=None) -> xr.Dataset:
    """A projection by name (under :func:`projections_root`) or folder, lazily opened."""
    path = Path(name_or_path).expanduser()
    if not (path / PROJECTION).exists():
        path = projections_root(root) / str(name_or_path)
    if not (path / PROJECTION).exists():
        known = ", ".join(list_projections(root)) or "none yet"
        raise FileNotFoundError(f"projection {str(name_or_path)!r} not found in {projections_root(root)} "
                                f"(projections: {known}). Fix: make it with `vegviz project EXPERIMENT --scenario "
                                "NAME` (vegviz.scenarios.projection.project)")
    return xr.open_dataset(path / PROJECTION, engine="netcdf4", chunks={})


# ----------------------------------------------------------------------------- inputs

def _source_runs(source) -> tuple[str, dict[str, list], str]:
    """(name, {model: [runs]}, kind) of a Run, an Experiment, or a run/experiment folder or name."""
    from ..experiment import EXPERIMENT_FILE, Experiment
    from ..paths import runs_root
    from ..training.run import Run

    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if not path.is_dir():
            path = runs_root() / str(source)
        if (path / EXPERIMENT_FILE).exists():
            source = Experiment.open(path)
        elif (path / "config.yaml").exists():
            source = Run(path)
        else:
            raise FileNotFoundError(f"{str(source)!r} is neither a run/experiment folder nor a name under "
                                    f"{runs_root()}. Fix: pass the folder printed by `vegviz train` or `vegviz "
                                    "experiment`, or its name")
    if isinstance(source, Run):
        return source.name, {source.config.model: [source]}, "run"
    if isinstance(source, Experiment):
        members = getattr(source, "members", None)  # ensembles: several runs per model
        runs = {m: (members(m) if members else [r for k, r in source.runs.items() if k == m]) for m in source.models}
        missing = [m for m, group in runs.items() if not group]
        if missing:
            raise FileNotFoundError(f"experiment {source.name} has no trained run of {missing}. Fix: finish it "
                                    f"(`vegviz experiment --config {source.path / EXPERIMENT_FILE} --name {source.name}`)")
        return source.name, runs, "experiment"
    raise TypeError(f"source: expected a Run, an Experiment or a folder/name, got {type(source).__name__}")


def _scenario(scenario) -> tuple[str, xr.Dataset]:
    from . import open_scenario

    if isinstance(scenario, xr.Dataset):
        if "scenario" not in scenario.attrs:
            raise ScenarioError("the Dataset passed as scenario has no 'scenario' attribute. Fix: pass a scenario "
                                "name or vegviz.scenarios.open_scenario(NAME)")
        return str(scenario.attrs["scenario"]), scenario
    ds = open_scenario(scenario)
    return str(ds.attrs["scenario"]), ds


def _grid_text(ds) -> str:
    return (f"{ds.sizes['lat']} x {ds.sizes['lon']} cells, {float(ds['lat'][0]):.4f}..{float(ds['lat'][-1]):.4f} N, "
            f"{float(ds['lon'][0]):.4f}..{float(ds['lon'][-1]):.4f} E")


def _check_domain(name: str, runs: dict[str, list], scen_name: str, scen: xr.Dataset) -> None:
    """Every run was trained on the scenario's grid (and domain, when both name one)."""
    for group in runs.values():
        for run in group:
            pred = run.predictions
            if pred is None:
                from ..catalog import open_data

                ref = open_data(run.config.data, seed=run.config.seed)
                domain = ref.attrs.get("domain")
            else:
                ref, domain = pred, pred.attrs.get("data_domain")
            same = all(ref.sizes[c] == scen.sizes[c] and np.allclose(ref[c].values, scen[c].values, atol=1e-6)
                       for c in ("lat", "lon"))
            sd = scen.attrs.get("domain")
            if not same or (domain and sd and str(domain) != str(sd)):
                raise ScenarioError(
                    f"{name} ({run.name}) was trained on {domain or run.config.data} ({_grid_text(ref)}), but scenario "
                    f"{scen_name!r} is on {sd or 'another grid'} ({_grid_text(scen)}): a model runs only on the "
                    f"domain it was trained on. Fix: build the scenario from the run's data (`vegviz scenario NAME "
                    f"--data {run.config.data} --period ...`) or project an experiment trained on {sd or 'that grid'}")
            if pred is not None:
                pred.close()


def _check_period(scen_name: str, scen: xr.Dataset, base: xr.Dataset, runs: dict[str, list]) -> None:
    ts, tb = scen["time"].values, base["time"].values
    if ts.shape != tb.shape or not (ts == tb).all():
        cover = f"{pd.Timestamp(tb[0]):%Y-%m-%d}..{pd.Timestamp(tb[-1]):%Y-%m-%d}" if tb.size else "none of its days"
        raise ScenarioError(
            f"scenario {scen_name!r} spans {pd.Timestamp(ts[0]):%Y-%m-%d}..{pd.Timestamp(ts[-1]):%Y-%m-%d} but its "
            f"baseline {scen.attrs.get('baseline')!r} holds {cover} of it: the models cannot run on the baseline "
            "over the scenario's days. Fix: rebuild the scenario over a period inside the baseline data")
    burn_in = max(run.config.burn_in for group in runs.values() for run in group)
    whole = [y for y in pd.DatetimeIndex(ts).year.unique()
             if ((pd.DatetimeIndex(ts).year == y).sum() >= 365 and pd.Timestamp(f"{y}-01-01") >= pd.Timestamp(ts[0])
                 + pd.Timedelta(days=burn_in))]
    if not whole:
        raise ScenarioError(
            f"scenario {scen_name!r} spans {len(ts)} days ({pd.Timestamp(ts[0]):%Y-%m-%d}..{pd.Timestamp(ts[-1]):%Y-%m-%d}): "
            f"the models spend their first {burn_in} days spinning up, which leaves no whole calendar year to "
            "summarise. Fix: build the scenario over whole years, at least two (e.g. --period 2009:2016)")


# ----------------------------------------------------------------------------- predictions

def _same_data(run, pred: xr.Dataset, base: xr.Dataset, full: xr.Dataset | None) -> bool:
    """Were the run's stored predictions made from the data ``base`` holds?

    Yes when every root attribute of ``base`` equals the stored ``data_*`` one (the same store),
    or when the content hashes of the run's data (its provenance.yaml, :mod:`vegviz.provenance`)
    equal those of ``full`` (the baseline's whole data set) over the same days: the same
    values, e.g. a store rebuilt since by the same generator.
    """
    if all(str(pred.attrs.get(f"data_{k}")) == str(v) for k, v in base.attrs.items()):
        return True
    data = (run.provenance or {}).get("data") or {}
    digests, period = data.get("variable_sha256"), (data.get("hashed") or {}).get("period")
    if full is None or not digests or not period or not all(v in full.variables for v in digests):
        return False
    from ..provenance import hash_variables

    return hash_variables(full, list(digests), tuple(period))["variables"] == digests


def _stored_baseline(run, base: xr.Dataset, var: str, full: xr.Dataset | None = None):
    """The run's stored predictions over the baseline's days when they are the same computation, else None:
    the same checkpoint (SHA-256), the same first day (so the same zero state), the same data (:func:`_same_data`)."""
    from ..training.checkpoint import file_sha256

    pred = run.predictions
    if pred is None:
        return None
    try:
        t, tb = pred["time"].values, base["time"].values
        if (var not in pred or t[0] != tb[0] or t[-1] < tb[-1]
                or pred.attrs.get("checkpoint_sha256") != file_sha256(run.best_checkpoint)
                or not _same_data(run, pred, base, full)):
            return None
        return pred[var].sel(time=slice(tb[0], tb[-1])).load()
    finally:
        pred.close()


def _baseline_key(scen: xr.Dataset, full: xr.Dataset) -> dict:
    """What makes two projections' baselines the same days of the same data."""
    return {"baseline": str(scen.attrs.get("baseline")), "baseline_start": str(scen.attrs.get("baseline_start")),
            "baseline_end": str(scen.attrs.get("baseline_end")), "baseline_history": str(full.attrs.get("history"))}


def _earlier_projection(root, key: dict, runs: dict) -> xr.Dataset | None:
    """A finished projection (under the same projections root) of the same runs (same checkpoint SHA-256) on the
    same baseline (:func:`_baseline_key`): its ``<model>_baseline`` series are this projection's too, so another
    scenario of the same baseline costs the scenario runs only."""
    import yaml

    from ..training.checkpoint import file_sha256

    folder = projections_root(root)
    if not folder.is_dir():
        return None
    shas = {r.name: file_sha256(r.best_checkpoint) for group in runs.values() for r in group}
    for path in sorted(folder.glob(f"*/{PROJECTION}")):
        try:
            prov = yaml.safe_load((path.parent / "provenance.yaml").read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        same_runs = all((prov.get("runs") or {}).get(n, {}).get("checkpoint_sha256") == sha for n, sha in shas.items())
        if prov.get("baseline_key") == key and same_runs:
            return xr.open_dataset(path, engine="netcdf4", chunks={})
    return None


def _predict_model(model: str, group: list, scen: xr.Dataset, base: xr.Dataset, full, device, reuse: bool, log,
                   times, earlier: xr.Dataset | None = None, threads: int | None = None):
    """{series name: (scenario, baseline)} daily LAI of ``model``'s runs (members named by run)."""
    out = {}
    for run in group:
        t0 = time.perf_counter()
        s = run.predict(scen, write=False, device=device, threads=threads)[run.config.model]
        times["predict"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        b, how = None, "predicted"
        if reuse and earlier is not None and len(group) == 1 and f"{model}{BASELINE_SUFFIX}" in earlier:
            b, how = earlier[f"{model}{BASELINE_SUFFIX}"].load(), f"read from projection {earlier.attrs['projection']}"
        if b is None and reuse:
            b = _stored_baseline(run, base, run.config.model, full)
            how = "stored predictions" if b is not None else how
        if b is None:
            b = run.predict(base, write=False, device=device, threads=threads)[run.config.model]
            times["predict"] += time.perf_counter() - t0
        else:
            times["baseline_read"] += time.perf_counter() - t0
        log(f"[{run.name}] scenario predicted, baseline {how}")
        out[run.name] = (s.drop_attrs(), b.drop_attrs())
    return out


# ----------------------------------------------------------------------------- summaries

def _groups(landcover: xr.DataArray, aridity: xr.DataArray, cells: xr.DataArray, min_cells: int = 5) -> dict:
    """{"vegetation": {IGBP name: cells}, "aridity": {UNEP class: cells}} over ``cells`` (lat, lon)."""
    from ..contract import IGBP_CLASSES
    from ..evaluation import aridity_class
    from ..evaluation.summary import vegetation_groups

    probe = xr.Dataset({"cells": cells.expand_dims(model=["any"]).astype(float).where(cells)})
    veg = {IGBP_CLASSES.get(code, str(code)): sel
           for code, sel in vegetation_groups(probe, landcover, metric="cells", min_cells=min_cells).items()}
    classes = aridity_class(aridity).values
    inside = cells.values
    arid = {c: inside & (classes == c) for c in dict.fromkeys(classes[inside].tolist()) if c}
    return {"vegetation": veg, "aridity": {c: s for c, s in arid.items() if s.sum() >= min_cells}}


def summary_table(proj: xr.Dataset, groups: dict | None = None) -> pd.DataFrame:
    """Mean Δ and mean baseline value per (quantity, grouping, group, model) over the basin cells."""
    cells = proj["mask"].fillna(0).values > 0
    sets = {"all": {"all cells": cells}, **(groups or {})}
    rows = []
    for q in QUANTITIES:
        delta, baseline = proj[f"delta_{q}"], proj[f"{q}_baseline"]
        for grouping, members in sets.items():
            for group, sel in members.items():
                for m in proj["model"].values:
                    d = np.asarray(delta.sel(model=m).values, dtype=float)[sel]
                    b = np.asarray(baseline.sel(model=m).values, dtype=float)[sel]
                    ok = np.isfinite(d)
                    rows.append({"quantity": q, "grouping": grouping, "group": group, "model": str(m),
                                 "n_cells": int(ok.sum()), "baseline": float(np.mean(b[ok])) if ok.any() else np.nan,
                                 "delta": float(np.mean(d[ok])) if ok.any() else np.nan})
    return pd.DataFrame(rows)


def _summaries(series: dict[str, tuple], members: dict[str, list[str]], coords) -> xr.Dataset:
    """Per-cell Δ and baseline summaries (model, lat, lon); ensembles get the spread of their members' Δ."""
    names = list(series)
    # one call: the years averaged are those complete in every series, scenario and baseline alike
    both = season_summaries({**{f"{n}|s": s for n, (s, _) in series.items()},
                             **{f"{n}|b": b for n, (_, b) in series.items()}})
    scen = both.sel(series=[f"{n}|s" for n in names])
    base = both.sel(series=[f"{n}|b" for n in names])
    out = xr.Dataset(coords={"model": names, **coords})
    for q in QUANTITIES:
        delta = (scen[q].values - base[q].values)
        delta = xr.DataArray(delta, dims=("model", "lat", "lon"), coords={"model": names, **coords})
        out[f"delta_{q}"] = delta.astype(np.float32).assign_attrs(
            {**scen[q].attrs, "long_name": f"change of the {scen[q].attrs['long_name']}: scenario - baseline"})
        out[f"{q}_baseline"] = xr.DataArray(base[q].values.astype(np.float32), dims=("model", "lat", "lon"),
                                            coords={"model": names, **coords}, attrs=scen[q].attrs)
        spread = xr.full_like(out[f"delta_{q}"], np.nan)
        for model, runs in members.items():
            if len(runs) > 1:
                spread.loc[{"model": model}] = out[f"delta_{q}"].sel(model=runs).std("model", ddof=1)
        out[f"delta_{q}_spread"] = spread.assign_attrs(
            units=scen[q].attrs["units"], long_name=f"ensemble spread (std across members, ddof 1) of delta_{q}")
    out["years"] = both["years"].assign_attrs(both["years"].attrs)
    return out


# ----------------------------------------------------------------------------- the projection

def project(source, scenario, *, device: str | None = None, root=None, overwrite: bool = False,
            write: bool = True, reuse_baseline: bool = True, threads: int | None = None, log=print) -> xr.Dataset:
    """Run ``source``'s models on ``scenario`` and on its baseline; return (and write) the projection.

    ``source``: a :class:`vegviz.training.Run`, a :class:`vegviz.experiment.Experiment`, or the
    folder or name (under the runs root) of either. ``scenario``: a scenario name
    (:func:`vegviz.scenarios.list_scenarios`) or an opened scenario Dataset. ``device``
    overrides the runs' device; ``threads`` the CPU threads of the models (default: torch's
    thread count in this process, i.e. every core unless set, whatever the runs were trained
    with). ``root`` is the runs root the ``projections`` folder goes under (default
    :func:`vegviz.paths.runs_root`). With ``write`` the projection is written
    (see the module docstring); an existing one is replaced only with ``overwrite``.
    Every check runs before anything is computed or written.
    """
    from . import open_baseline

    times = {"predict": 0.0, "baseline_read": 0.0, "truth": 0.0, "summaries": 0.0, "write": 0.0}
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads={threads!r}: give a positive number of CPU threads, or None for every core")
    import torch  # the models need it anyway

    threads = threads or torch.get_num_threads()
    name, runs, kind = _source_runs(source)
    scen_name, scen = _scenario(scenario)
    folder = projection_dir(name, scen_name, root)
    if write and folder.exists() and not overwrite:
        raise FileExistsError(f"projection {folder.name!r} exists ({folder}). Fix: pass overwrite=True "
                              "(--overwrite) to replace it")
    _check_domain(name, runs, scen_name, scen)
    base = open_baseline(scen)
    _check_period(scen_name, scen, base, runs)
    synthetic = is_synthetic(scen)
    from ..catalog import open_data

    full = open_data(scen.attrs["baseline"])  # the baseline's whole record: aridity, stored-prediction checks
    key = _baseline_key(scen, full)
    earlier = _earlier_projection(root, key, runs) if reuse_baseline else None

    series, members = {}, {}
    for model, group in runs.items():
        got = _predict_model(model, group, scen, base, full, device, reuse_baseline, log, times, earlier, threads)
        if len(got) == 1:
            series[model] = next(iter(got.values()))
        else:  # ensemble: the member mean is the model, the members are kept for their spread
            series[model] = tuple(xr.concat([v[i] for v in got.values()], "member").mean("member") for i in (0, 1))
            members[model] = list(got)
            series.update(got)
    mask = scen["mask"].fillna(0).astype(bool).load()
    series[PROCESS] = tuple(d["lai_process"].load().where(mask) for d in (scen, base))
    if synthetic:
        from ..data.virtual.truth import true_lai

        t0 = time.perf_counter()
        if earlier is not None and TRUTH + BASELINE_SUFFIX in earlier:
            series[TRUTH] = (true_lai(scen).where(mask), earlier[TRUTH + BASELINE_SUFFIX].load())
        else:
            series[TRUTH] = tuple(true_lai(d).where(mask) for d in (scen, base))
        times["truth"] = time.perf_counter() - t0
        log(f"[truth] re-ran the virtual basin's vegetation on scenario and baseline in {times['truth']:.0f} s")

    if earlier is not None:
        earlier.close()
    t0 = time.perf_counter()
    coords = {"lat": scen["lat"], "lon": scen["lon"]}
    summaries = _summaries(series, members, coords)
    aridity = _aridity(full, base, runs)
    daily = {}
    for n, (s, b) in series.items():
        if n in {r for rs in members.values() for r in rs}:
            continue  # members: their summaries are kept, their daily series are not
        attrs = {"units": "m2 m-2", "long_name": f"leaf area index of {n} on the scenario"}
        daily[n] = s.astype(np.float32).assign_attrs(attrs)
        daily[n + BASELINE_SUFFIX] = b.astype(np.float32).assign_attrs(
            {**attrs, "long_name": f"leaf area index of {n} on the baseline"})
    proj = xr.Dataset(daily).assign(summaries.data_vars).assign(
        mask=scen["mask"].load(), landcover=scen["landcover"].load(), aridity_index=aridity)
    proj = proj.assign_coords(kind=("model", [_kind(m, members) for m in summaries["model"].values]))
    proj.attrs = _attrs(name, kind, runs, scen_name, scen, synthetic)
    groups = _groups(proj["landcover"], aridity, proj["mask"].fillna(0) > 0)
    summary = summary_table(proj, groups)
    skill = skill_table(xr.Dataset({q: proj[f"delta_{q}"] for q in QUANTITIES}), groups) if synthetic else None
    times["summaries"] = time.perf_counter() - t0
    proj.attrs["seconds"] = str({k: round(v, 1) for k, v in times.items()})
    if write:
        t0 = time.perf_counter()
        _write(folder, proj, summary, skill, runs, times, overwrite, key)
        log(f"wrote {folder} in {time.perf_counter() - t0:.0f} s")
        proj.attrs["seconds"] = str({k: round(v, 1) for k, v in times.items()})
    proj.attrs["path"] = str(folder) if write else ""
    return proj


def _kind(model: str, members: dict) -> str:
    if model == TRUTH:
        return "truth"
    if model == PROCESS:
        return "process"
    if model in members:
        return "ensemble mean"
    return "member" if any(model in rs for rs in members.values()) else "model"


def _aridity(full: xr.Dataset, base: xr.Dataset, runs: dict) -> xr.DataArray:
    """UNEP aridity index of the baseline data over the runs' training period (the climate they learned);
    over the scenario's baseline days when the data do not reach it."""
    from ..evaluation import aridity_index

    train = next(iter(runs.values()))[0].config.periods.train
    try:
        return aridity_index(full, period=train)
    except (ValueError, TypeError):  # e.g. a year-set split, or data that start after it
        return aridity_index(base, period=(base["time"].values[0], base["time"].values[-1]))


def _source_folder(kind: str, runs: dict) -> Path:
    first = next(iter(runs.values()))[0].path
    return Path(first).parent if kind == "experiment" else Path(first)


def _attrs(name, kind, runs, scen_name, scen, synthetic) -> dict:
    from ..training.checkpoint import vegviz_version

    return {
        "title": f"{'SYNTHETIC ' if synthetic else ''}projection of {kind} {name} under scenario {scen_name}",
        "source": f"vegviz.scenarios.projection: {kind} {name} on scenario {scen_name} and its baseline",
        "projection": projection_name(name, scen_name),
        "experiment" if kind == "experiment" else "run": name,
        "models": ", ".join(runs),
        # the folder of the run or experiment (an experiment's is its first run's parent): for its comparison.csv
        "source_path": str(_source_folder(kind, runs)),
        "scenario": scen_name,
        **{f"scenario_{k}" if not k.startswith(("scenario", "baseline")) else k: str(v)
           for k, v in scen.attrs.items() if k in ("scenario_method", "scenario_change", "baseline", "baseline_start",
                                                  "baseline_end", "domain", "domain_title")},
        "synthetic": int(synthetic),
        "comment": ("<m>: daily LAI of model m on the scenario, <m>_baseline on the baseline (same days, same zero "
                    "state); delta_<q> = scenario - baseline of the per-cell summary q (averaged over the whole years "
                    "every series has complete); process: lai_process; truth: the virtual basin's true vegetation "
                    "(synthetic data only)"),
        "vegviz_version": vegviz_version(),
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Conventions": "CF-1.8",
    }


def _write(folder: Path, proj: xr.Dataset, summary: pd.DataFrame, skill, runs, times, overwrite: bool,
           baseline_key: dict) -> None:
    import yaml

    from ..io import building_path, replace_directory, write_netcdf_atomic
    from ..training.checkpoint import file_sha256

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = building_path(folder)
    tmp.mkdir()
    try:
        t0 = time.perf_counter()
        encoding = {v: {"zlib": True, "complevel": 1, "shuffle": True, "_FillValue": np.float32(np.nan),
                        "chunksizes": (min(365, proj.sizes["time"]), proj.sizes["lat"], proj.sizes["lon"])}
                    for v, da in proj.data_vars.items() if da.dims == ("time", "lat", "lon")}
        write_netcdf_atomic(proj, tmp / PROJECTION, encoding)
        summary.to_csv(tmp / "summary.csv", index=False)
        if skill is not None:
            skill.to_csv(tmp / "skill.csv", index=False)
        times["write"] = time.perf_counter() - t0
        prov = {"projection": proj.attrs["projection"], "scenario": proj.attrs["scenario"],
                "scenario_attrs": {k: str(v) for k, v in proj.attrs.items() if k.startswith(("scenario_", "baseline"))},
                "baseline_key": baseline_key,
                "runs": {r.name: {"path": str(r.path), "model": r.config.model,
                                  "checkpoint_sha256": file_sha256(r.best_checkpoint)}
                         for group in runs.values() for r in group},
                "seconds": {k: round(v, 1) for k, v in times.items()},
                "created": proj.attrs["created"], "vegviz_version": proj.attrs["vegviz_version"]}
        (tmp / "provenance.yaml").write_text(yaml.safe_dump(prov, sort_keys=False))
        if folder.exists() and not overwrite:
            raise FileExistsError(f"projection {folder.name!r} appeared at {folder} meanwhile. Fix: pass "
                                  "overwrite=True or rerun")
        replace_directory(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
