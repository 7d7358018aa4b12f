"""Where the dashboards get their data: the catalog and the runs directory, nothing else.

Every dashboard reads through these functions, so they all agree on what a "result" is
(a run or an experiment with ``predictions.nc``, listed by :class:`vegviz.catalog.RunsCatalog`)
and on which observations belong to it (the data set named in its ``data`` attribute).

Paths typed by a user never reach the file system directly: :func:`safe_path` resolves
them and refuses anything outside the configured runs and data directories.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import xarray as xr

from .. import paths  # the only vegviz import here: finding the two folders must not import torch

__all__ = ["PathOutsideRoots", "allowed_roots", "data_choices", "data_domain", "domain_of", "list_histories",
           "list_projections", "list_results", "list_scenarios", "observations_for", "open_observations",
           "open_projection", "open_result", "result_label", "result_models", "result_options", "safe_path"]


class PathOutsideRoots(PermissionError):
    """A user-supplied path points outside the runs and data directories."""


def allowed_roots() -> list[Path]:
    """The folders the dashboards may read and write: the runs directory and the data cache."""
    return [paths.runs_root().expanduser().resolve(), paths.cache_dir().expanduser().resolve()]


def safe_path(text: str | os.PathLike, *, roots: list[Path] | None = None) -> Path:
    """``text`` as a resolved path inside one of ``roots`` (default :func:`allowed_roots`).

    Relative paths are taken relative to the first root; ``..``, symlinks and absolute
    paths that lead elsewhere raise :class:`PathOutsideRoots` naming the allowed folders.
    """
    roots = roots or allowed_roots()
    p = Path(text).expanduser()
    p = (p if p.is_absolute() else roots[0] / p).resolve()
    for root in roots:
        if p == root or root in p.parents:
            return p
    raise PathOutsideRoots(f"{text!s} is outside the folders this app may use ({', '.join(map(str, roots))}). "
                           "Fix: choose a run name or a path inside one of them")


def list_results(kind: str | None = None) -> dict[str, dict]:
    """Runs and experiments with predictions, by catalog name -> metadata (kind, models, data, path).

    Rescans the runs directory on every call (cheap: YAML files only), so a run finished
    in another tab or process shows up at once. ``kind`` filters ("run" or "experiment").
    """
    from ..catalog import RunsCatalog

    cat = RunsCatalog(root=paths.runs_root())  # the same folder as its default, found without importing torch
    out = {}
    for name in cat:
        md = dict(cat._entries[name].describe().get("metadata", {}))
        if kind is None or md.get("kind") == kind:
            out[name] = md
    # experiments first (they hold all three models), newest last within each kind
    return dict(sorted(out.items(), key=lambda kv: (kv[1].get("kind") != "experiment", kv[0])))


def result_label(name: str, md: dict) -> str:
    """What a result selector shows: "tiny · 3 models · virtual_ucrb_small · 2026-12-07 23:12".

    Name, model (or how many), data set and when its predictions were written: enough to tell
    runs apart without reading a timestamp cut off by the widget.
    """
    from datetime import datetime

    models = md.get("models") or []
    what = models[0] if len(models) == 1 else f"{len(models)} models"
    when = ""
    path = md.get("path")
    if path:
        f = Path(path) / "predictions.nc"
        if f.exists():
            when = datetime.fromtimestamp(f.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
    return " · ".join(p for p in (name, what, str(md.get("data") or ""), when) if p)


def result_options(results: dict[str, dict]) -> dict[str, str]:
    """A selector's options for ``results`` (:func:`list_results`): readable label -> result name."""
    return {result_label(name, md): name for name, md in results.items()}


def list_histories() -> dict[str, Path]:
    """Runs with a training history (``history.csv``), finished or not, by name -> run folder.

    Runs of experiments are named ``<experiment>/<model>``, as in :func:`list_results`.
    """
    root = paths.runs_root()
    out = {}
    for f in sorted(root.glob("*/history.csv")) + sorted(root.glob("*/*/history.csv")):
        out[f.parent.relative_to(root).as_posix()] = f.parent
    return out


def open_result(name: str) -> xr.Dataset:
    """The predictions of a run or experiment, lazily opened (one variable per model)."""
    results = list_results()
    if name not in results:
        raise FileNotFoundError(f"no run or experiment named {name!r} with predictions. Existing: "
                                f"{', '.join(results) or 'none yet'}. Fix: train one (vegviz train / "
                                "vegviz experiment, or the Training dashboard)")
    path = safe_path(Path(results[name]["path"]) / "predictions.nc")
    return xr.open_dataset(path, engine="netcdf4", chunks={})


def list_scenarios() -> list[str]:
    """Names of the climate scenarios in the data directory (:func:`vegviz.scenarios.list_scenarios`)."""
    from ..scenarios import list_scenarios as scenarios

    return scenarios()


def list_projections() -> list[str]:
    """Names of the finished projections under the runs directory (``<source>--<scenario>``), sorted."""
    from ..scenarios.projection import list_projections as projections

    return projections()


def open_projection(name: str) -> xr.Dataset:
    """A projection by name, lazily opened (:func:`vegviz.scenarios.projection.open_projection`); its folder
    is kept in ``attrs['path']`` (the summary and skill tables lie next to it)."""
    from ..scenarios.projection import open_projection as opened, projections_root

    names = list_projections()
    if name not in names:  # a name only: never a path typed into a page
        raise FileNotFoundError(f"no projection named {name!r} in {projections_root()} (projections: "
                                f"{', '.join(names) or 'none yet'}). Fix: run a scenario in the Scenarios dashboard "
                                "or `vegviz project EXPERIMENT --scenario NAME`")
    ds = opened(projections_root() / name)
    ds.attrs["path"] = str(projections_root() / name)
    return ds


def result_models(predictions: xr.Dataset) -> list[str]:
    """The model variables of a predictions Dataset, in file order (an ensemble's spread is not one)."""
    from ..evaluation.scoring import model_variables

    return model_variables(predictions)


@lru_cache(maxsize=4)
def open_observations(data: str, seed: int = 42) -> xr.Dataset:
    """The model-ready Dataset ``data`` (catalog entry or Zarr/NetCDF path), lazily opened; cached per process."""
    from ..catalog import open_data  # not vegviz.training's re-export: that package imports torch

    return open_data(data, seed=seed)


def observations_for(predictions: xr.Dataset) -> xr.Dataset:
    """The observations a predictions Dataset was made from (its ``data`` attribute)."""
    data = predictions.attrs.get("data")
    if not data:
        raise ValueError("these predictions do not say which data set they belong to (no 'data' attribute). "
                         "Fix: re-predict with this version of vegviz (Run.predict())")
    seed = predictions.attrs.get("data_seed", 42)
    try:
        seed = int(seed)
    except (TypeError, ValueError):
        seed = 42
    return open_observations(str(data), seed)


def data_choices() -> list[str]:
    """Catalog entries a model can be trained on (time-dependent, model-ready data sets)."""
    from ..catalog import model_ready

    return model_ready()


def domain_of(observations: xr.Dataset):
    """The :class:`~vegviz.domains.Domain` a data set lives on (its ``domain`` attribute or its window)."""
    from .. import domains

    return domains.of_dataset(observations)


def data_domain(data: str):
    """The domain of a data choice (catalog entry or path) without building anything; None when unknown.

    A catalog entry says it in ``metadata['domain']``; a virtual basin entry named
    ``virtual_<domain>`` or ``virtual_<domain>_small`` is on that domain (not opened: a virtual
    store is built on first read); any other entry or path is opened lazily and its
    attributes or coordinates tell (:func:`vegviz.domains.of_dataset`).
    """
    from .. import domains
    from ..catalog import _entry_metadata, open_catalog

    name = str(data or "").strip()
    if not name:
        return None
    try:
        cat = open_catalog()
        if name in cat:
            md = _entry_metadata(cat, name)
            if md.get("domain"):
                return domains.get(str(md["domain"]))
            if name.startswith("virtual_"):  # never opened here: that would build the store
                rest = name[len("virtual_"):]
                known = domains.names()
                found = next((d for d in (rest, rest.removesuffix("_small")) if d in known), None)
                return domains.get(found) if found else None
        return domain_of(open_observations(name))
    except Exception:  # an unreadable choice: the caller shows no domain, and training says what is wrong
        return None
