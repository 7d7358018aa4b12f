"""The intake catalog in front of every data set.

``catalogs/vegviz.yaml`` is an intake (v1-format) YAML catalog that opens with
``intake.open_catalog`` under intake 2.x. Entries read as xarray Datasets:

* ``virtual_<domain>`` / ``virtual_<domain>_small``: the embedded synthetic basin of every
  domain (:mod:`vegviz.domains`), built on first read into the cache directory
  (``VEGVIZ_DATA_DIR``) and opened lazily: the built-in domains' entries (``virtual_ucrb``,
  ``virtual_conus``, ``virtual_gunnison``, ...) are in the YAML, those of the user's domains
  (``domains.yaml`` in the data directory) are made on the fly by :class:`DomainsCatalog`
  from the same template, so ``vegviz domain add NAME ...`` is all it takes;
* ``static``: the real static fields (land cover, elevation, mask), NetCDF;
* ``scenarios``: a nested catalog (:class:`ScenariosCatalog`) of the climate scenarios in
  ``<data dir>/scenarios`` (``vegviz scenario NAME ...``), also opened by
  ``open_data("scenario:NAME")``;
* ``runs``: a nested catalog (:class:`RunsCatalog`) of every trained run and experiment
  under the runs directory, found by scanning it, so a finished run can be opened by
  name without editing any YAML: ``vegviz.open_catalog().runs["my-run"].to_dask()``.

Each entry carries hvplot defaults under ``metadata['plots']``; :func:`plot` applies them.
"""
from __future__ import annotations

import os
from pathlib import Path

import intake
from intake.catalog import Catalog
from intake.catalog.local import LocalCatalogEntry, MergedCatalog, UserParameter
from intake.source.base import DataSource, Schema

CATALOG_ENV = "VEGVIZ_CATALOG"
REPO_CATALOG = Path(__file__).resolve().parent.parent / "catalogs" / "vegviz.yaml"


def catalog_path() -> Path:
    """Where the main catalog is: $VEGVIZ_CATALOG, else the repository's catalogs/vegviz.yaml."""
    env = os.environ.get(CATALOG_ENV)
    path = Path(env) if env else REPO_CATALOG
    if not path.exists():
        raise FileNotFoundError(
            f"vegviz catalog not found at {path}. Fix: install vegviz from its repository "
            f"(pip install -e .) so catalogs/ sits next to the package, or set {CATALOG_ENV} to the YAML file"
        )
    return path


USER_CATALOG = "catalog.yaml"


def user_catalog_path() -> Path:
    """The catalog of the user's own data sets (written by ``vegviz prepare``), in the data directory."""
    from .paths import cache_dir

    return cache_dir() / USER_CATALOG


def open_catalog(path: str | os.PathLike | None = None):
    """Open the vegviz intake catalog; works from any working directory.

    Without ``path``, the main catalog, the user catalog of data sets registered by
    ``vegviz prepare`` (:func:`user_catalog_path`) when it exists, and the virtual basins of
    the user's domains (:class:`DomainsCatalog`) when there are any, as one catalog.
    """
    if path is not None:
        return intake.open_catalog(str(path))
    user = user_catalog_path()
    if user.exists():
        cat = intake.open_catalog([str(catalog_path()), str(user)])
    else:
        cat = intake.open_catalog(str(catalog_path()))
    domains = DomainsCatalog()
    if not domains.domains():
        return cat
    return _Merged([cat, domains], name="vegviz", description="vegviz data sets and the virtual basins of the "
                   "user's domains")


def check_name(name: str) -> str:
    """``name`` if it can name a user catalog entry; ValueError naming the problem otherwise."""
    import re

    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name or ""):
        raise ValueError(f"catalog name {name!r}: use letters, digits and underscores, starting with a letter "
                         "(e.g. 'ucrb_real'). Fix: pass another --name")
    builtin = set(intake.open_catalog(str(catalog_path())))
    if name in builtin:
        raise ValueError(f"catalog name {name!r} is a built-in entry ({', '.join(sorted(builtin))}). "
                         "Fix: pass another --name")
    return name


def register(name: str, urlpath: str | os.PathLike, *, description: str, metadata: dict | None = None) -> Path:
    """Add (or replace) the Zarr store ``urlpath`` as entry ``name`` of the user catalog; returns its file.

    The entry then opens like the built-in ones: ``open_data(name)``, ``vegviz train --data
    name``, the dashboards' data choices. Names of the main catalog's entries are refused.
    """
    import yaml

    from .io import write_atomic

    check_name(name)
    path = user_catalog_path()
    doc = (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}
    doc.setdefault("metadata", {"version": 1, "title": "vegviz: the user's prepared data sets"})
    doc.setdefault("sources", {})[name] = {
        "description": description,
        "driver": "zarr",
        "args": {"urlpath": str(Path(urlpath).expanduser().resolve())},
        "metadata": dict(metadata or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, yaml.safe_dump(doc, sort_keys=False).encode())


#: ``open_data("scenario:NAME")`` opens the climate scenario NAME (:func:`vegviz.scenarios.open_scenario`)
SCENARIO_PREFIX = "scenario:"


def open_data(source: str | os.PathLike, seed: int | None = None):
    """A data set by catalog entry name or by Zarr/NetCDF path, lazily opened (an xarray Dataset).

    ``"scenario:NAME"`` opens climate scenario NAME of the data directory: the contract's
    layout without ``lai`` (not data to train on; projections read it).

    ``seed`` goes to entries that take one (the virtual basin) and is ignored by the others.
    Entries that are not model-ready data sets (see :func:`model_ready`: ``runs``, ``static``)
    are refused with a ValueError that says what the entry is and what to use instead.
    """
    if str(source).startswith(SCENARIO_PREFIX):  # a climate scenario (forcing without lai), by name
        from .scenarios import open_scenario

        return open_scenario(str(source)[len(SCENARIO_PREFIX):])
    path = Path(source).expanduser()
    cat = open_catalog()
    name = str(source)
    is_store = path.is_file() or any((path / m).exists() for m in (".zgroup", "zarr.json", ".zattrs"))
    if is_store:
        if name in cat and not name.endswith((".zarr", ".nc")):
            raise FileNotFoundError(f"data: {name!r} is both a path here and a catalog entry. Fix: pass "
                                    f"./{name} for the path, or run from another folder for the entry")
        from .stores import open_store

        return open_store(path)  # a damaged file: a DataFileError naming it (and the variable, the block)
    if path.is_dir() and name not in cat:  # (a plain folder named like an entry does not hide the entry)
        raise FileNotFoundError(f"data: {path} is a folder but not a Zarr store (no .zgroup or zarr.json). "
                                "Fix: pass the .zarr store itself or a catalog entry name")
    ready = model_ready(cat)
    if name not in cat:
        raise FileNotFoundError(f"data: {name!r} is neither an existing Zarr/NetCDF path nor an entry of the "
                                f"catalog; its data sets: {', '.join(ready)}. Fix: use one of them or a path")
    if name not in ready:  # e.g. runs or static: opening them as data fails later and obscurely
        why = _entry_metadata(cat, name).get("use_instead") or "its metadata does not say model_ready: true"
        raise ValueError(f"data: catalog entry {name!r} is not a model-ready data set: {' '.join(str(why).split())}. "
                         f"Fix: pass a data set ({', '.join(ready)}) or a Zarr/NetCDF path")
    entry = cat[name]
    if seed is not None:
        try:
            entry = entry(seed=seed)
        except (TypeError, ValueError):  # an entry without a seed parameter
            pass
    return entry.to_dask()


def model_ready(cat=None) -> list[str]:
    """The entries of ``cat`` (default :func:`open_catalog`) that are model-ready data sets.

    Told by the entry's ``metadata['model_ready']`` (set for the virtual basin and by
    ``vegviz prepare``), so nothing is opened: ``runs`` (a catalog of results) and
    ``static`` (the static fields alone) are catalog entries but not data to train on.
    """
    cat = open_catalog() if cat is None else cat
    return [name for name in cat if _entry_metadata(cat, name).get("model_ready")]


def _entry_metadata(cat, name: str) -> dict:
    # describe() reads the YAML entry; cat[name].metadata would instantiate the source
    return dict(cat._entries[name].describe().get("metadata") or {})


def plot(source, name: str | None = None, **overrides):
    """Plot a catalog entry with the hvplot defaults stored in its metadata.

    ``name`` picks one of ``source.metadata['plots']`` (the first when omitted);
    keyword arguments override the stored defaults.
    """
    import hvplot.xarray  # noqa: F401  (registers .hvplot)

    plots = metadata(source).get("plots", {})
    if not plots:
        raise ValueError(f"catalog entry {source!r} has no plot defaults in its metadata")
    if name is None:
        name = next(iter(plots))
    if name not in plots:
        raise KeyError(f"no plot {name!r} for this entry; choose one of {sorted(plots)}")
    kwargs = {**plots[name], **overrides}
    ds = source.to_dask()
    return ds.hvplot(**kwargs)


def metadata(source) -> dict:
    """An entry's metadata, whichever intake generation made the source."""
    md = getattr(source, "metadata", None)
    if md is None:  # intake-xarray 2 adapters keep it on their reader
        md = getattr(getattr(source, "reader", None), "metadata", None)
    return dict(md or {})


class VirtualBasinSource(DataSource):
    """Intake source for the embedded virtual basin of a domain: builds the cache on first read.

    ``domain`` names a built-in or user domain (:mod:`vegviz.domains`; default the study's
    ``ucrb``), ``variant`` is "full" (1981-2016) or "small" (1998-2005).
    """

    container = "xarray"
    name = "vegviz_virtual_basin"
    version = "1"
    partition_access = False

    def __init__(self, variant: str = "full", seed: int = 42, data_dir: str | None = None, domain: str = "ucrb",
                 metadata=None):
        self.variant = variant
        self.seed = int(seed)
        self.data_dir = data_dir or None
        self.domain = domain
        self._ds = None
        super().__init__(metadata=metadata)

    def to_dask(self):
        if self._ds is None:
            from .data.virtual import open_virtual_basin

            self._ds = open_virtual_basin(self.variant, seed=self.seed, data_dir=self.data_dir, domain=self.domain)
        return self._ds

    read_chunked = to_dask

    def read(self):
        return self.to_dask().load()

    def discover(self):
        return self._get_schema()

    def _get_schema(self):
        ds = self.to_dask()
        return Schema(
            datashape=None,
            dtype=None,
            shape=None,
            npartitions=None,
            extra_metadata={"dims": dict(ds.sizes), "data_vars": sorted(ds.data_vars), **ds.attrs},
        )

    def _close(self):
        if self._ds is not None:
            self._ds.close()
        self._ds = None


class _Merged(MergedCatalog):
    """Catalogs as one, in order (intake's MergedCatalog lists the last first); the first of a name wins."""

    def _load(self):
        entries = {}
        for catalog in self._catalogs:
            catalog._load()
            for name, entry in catalog._entries.items():
                entries.setdefault(name, entry)
        self._entries = entries


#: The main catalog's entries whose specification the user domains' virtual basins copy.
VIRTUAL_TEMPLATES = {"full": ("virtual_ucrb", ""), "small": ("virtual_ucrb_small", "_small")}


class DomainsCatalog(Catalog):
    """The virtual basins of the user's domains: ``virtual_<name>`` and ``virtual_<name>_small``.

    One pair of entries per domain in ``domains.yaml`` (:func:`vegviz.domains.all_domains`,
    built-ins excluded: theirs are in the YAML), made when the catalog is read, so adding or
    removing a domain needs no catalog edit. Each entry copies the main catalog's
    ``virtual_ucrb``/``virtual_ucrb_small`` entry (seed parameter, metadata: model_ready,
    recommended periods, plots) with ``domain`` set, so both kinds of entries behave alike.
    Rescanned when older than ``ttl`` seconds (default 1).
    """

    name = "vegviz_domains"
    version = "1"

    def __init__(self, data_dir: str | None = None, ttl: float = 1, **kwargs):
        self.data_dir = data_dir or None
        super().__init__(ttl=ttl, **kwargs)

    def domains(self) -> dict:
        """The user's domains by name (no built-ins)."""
        from .domains import all_domains

        return {name: d for name, d in all_domains(self.data_dir).items() if not d.builtin}

    def _load(self):
        main = intake.open_catalog(str(catalog_path()))
        entries = {}
        for dom in self.domains().values():
            for variant, (template, suffix) in VIRTUAL_TEMPLATES.items():
                spec = main._entries[template].describe()
                name = f"virtual_{dom.name}{suffix}"
                period = "1981-2016" if variant == "full" else "small variant (1998-2005) for tests and quick demos"
                entries[name] = LocalCatalogEntry(
                    name=name,
                    description=(f"SYNTHETIC virtual {dom.title} (user domain {dom.name!r}, {dom.grid.nlat} x "
                                 f"{dom.grid.nlon} cells; basin: {dom.basin.describe()}), {period}, daily: "
                                 "stochastic weather and a 'true' ecohydrological LAI on the domain's real static "
                                 "fields, GLOBMAP-like composites (lai) and lai_process; the climate is calibrated "
                                 "on the UCRB (the Dataset's 'calibration' attribute says what). Built on first "
                                 "read and cached as Zarr."),
                    driver="vegviz.catalog.VirtualBasinSource",
                    args={**spec["args"], "domain": dom.name,
                          **({"data_dir": str(self.data_dir)} if self.data_dir else {})},
                    parameters=[UserParameter(**p) for p in spec.get("user_parameters", [])],
                    metadata={**spec["metadata"], "domain": dom.name},
                    catalog=self,
                )
        self._entries = entries


class ScenariosCatalog(Catalog):
    """The climate scenarios of the data directory (``<data dir>/scenarios/NAME.zarr``) as a catalog.

    One entry per scenario (:func:`vegviz.scenarios.list_scenarios`), opened lazily as Zarr;
    its metadata (``kind: scenario``, ``method``, ``baseline``, ``period``, ``change``,
    ``synthetic``, ``path``) comes from the store's attributes. Rescanned when older than
    ``ttl`` seconds (default 1), like :class:`RunsCatalog`, so a scenario built while a notebook
    or dashboard is open appears without a restart. ``open_data("scenario:NAME")`` opens one too.
    """

    name = "vegviz_scenarios"
    version = "1"

    def __init__(self, data_dir: str | None = None, ttl: float = 1, **kwargs):
        self.data_dir = data_dir or None
        super().__init__(ttl=ttl, **kwargs)

    def _load(self):
        import json

        from .scenarios import list_scenarios, scenario_path

        entries = {}
        for name in list_scenarios(self.data_dir):
            path = scenario_path(name, self.data_dir)
            try:
                attrs = json.loads((path / "zarr.json").read_text()).get("attributes", {})
            except (OSError, ValueError) as e:  # a damaged store must not hide the others
                attrs = {"error": f"unreadable scenario: {e}"}
            md = {"kind": "scenario", "path": str(path), "model_ready": False,
                  "method": attrs.get("scenario_method"), "baseline": attrs.get("baseline"),
                  "period": [attrs.get("baseline_start"), attrs.get("baseline_end")],
                  "change": attrs.get("scenario_change"), "domain": attrs.get("domain"),
                  "synthetic": bool(attrs.get("synthetic")) if "synthetic" in attrs else None}
            entries[name] = LocalCatalogEntry(
                name=name, description=f"scenario {name}: {md['change']} (baseline {md['baseline']})",
                driver="zarr", args={"urlpath": str(path)}, metadata=md, catalog=self)
        self._entries = entries


class RunsCatalog(Catalog):
    """The runs directory as a catalog: one entry per run or experiment with predictions.

    Entries are named by their path relative to ``root`` (default
    :func:`vegviz.training.runs_root`): ``"<run>"`` for a single run,
    ``"<experiment>"`` for an experiment's combined predictions (one variable per model)
    and ``"<experiment>/<model>"`` for its member runs. Each entry opens the run's
    ``predictions.nc`` lazily as an xarray Dataset; its metadata says what it is
    (``kind``: run or experiment, ``models``, ``data``, ``path``). The directory is
    rescanned when the catalog is older than ``ttl`` seconds (default 1), so runs that
    finish while a notebook or dashboard is open appear without a restart.
    """

    name = "vegviz_runs"
    version = "1"

    def __init__(self, root: str | os.PathLike | None = None, ttl: float = 1, **kwargs):
        self.root = str(root) if root else None
        super().__init__(ttl=ttl, **kwargs)

    @property
    def root_path(self) -> Path:
        if self.root:
            return Path(self.root).expanduser()
        from .paths import runs_root  # not vegviz.training: listing runs must not import torch

        return runs_root()

    def _load(self):
        root = self.root_path
        entries = {}
        if root.is_dir():
            found = [*root.glob("*/predictions.nc"), *root.glob("*/*/predictions.nc")]
            for path in sorted(found):
                name = path.parent.relative_to(root).as_posix()
                md = _run_metadata(path.parent)
                entries[name] = LocalCatalogEntry(
                    name=name,
                    description=f"{md['kind']} {name}: {', '.join(md['models'])} on {md['data']}",
                    driver="netcdf",
                    args={"urlpath": str(path), "chunks": {}, "xarray_kwargs": {"engine": "netcdf4"}},
                    metadata=md,
                    catalog=self,
                )
        self._entries = entries


_METADATA: dict[tuple, dict] = {}


def _run_metadata(folder: Path) -> dict:
    """What a run or experiment folder holds, from its YAML files (no data is opened).

    Cached by the files' modification times: the catalog rescans every second, and a
    runs folder may hold many runs.
    """
    stamp = tuple((folder / f).stat().st_mtime_ns if (folder / f).exists() else None
                  for f in ("experiment.yaml", "config.yaml"))
    key = (str(folder), stamp)
    if key not in _METADATA:
        _METADATA[key] = _read_run_metadata(folder)
    return dict(_METADATA[key])


def _read_run_metadata(folder: Path) -> dict:
    import yaml

    md = {"path": str(folder), "kind": "run", "models": [], "data": "unknown", "synthetic": None}
    try:
        if (folder / "experiment.yaml").exists():
            info = yaml.safe_load((folder / "experiment.yaml").read_text()) or {}
            md.update(kind="experiment", models=list(info.get("models", [])),
                      data=str(info.get("config", {}).get("data", "unknown")))
        elif (folder / "config.yaml").exists():
            cfg = yaml.safe_load((folder / "config.yaml").read_text()) or {}
            md.update(models=[str(cfg.get("model", "?"))], data=str(cfg.get("data", "unknown")))
    except (OSError, yaml.YAMLError) as e:  # a damaged run must not hide the others
        md["error"] = f"unreadable run description: {e}"
    return md


class ProjectionsCatalog(Catalog):
    """The projections under ``<runs root>/projections`` as a catalog: one entry per projection.

    Entries are named like the projection folders (``<experiment or run>--<scenario>``,
    :func:`vegviz.scenarios.projection.projection_name`) and open its ``projection.nc`` lazily;
    their metadata (from ``provenance.yaml``) say ``kind`` (projection), ``scenario``,
    ``runs`` and ``path``. Rescanned when older than ``ttl`` seconds, like :class:`RunsCatalog`.
    """

    name = "vegviz_projections"
    version = "1"

    def __init__(self, root: str | os.PathLike | None = None, ttl: float = 1, **kwargs):
        self.root = str(root) if root else None
        super().__init__(ttl=ttl, **kwargs)

    def _load(self):
        import yaml

        from .scenarios.projection import PROJECTION, projections_root

        folder = projections_root(self.root)
        entries = {}
        for path in sorted(folder.glob(f"*/{PROJECTION}")) if folder.is_dir() else []:
            md = {"kind": "projection", "path": str(path.parent), "scenario": None, "runs": []}
            try:
                prov = yaml.safe_load((path.parent / "provenance.yaml").read_text()) or {}
                md.update(scenario=prov.get("scenario"), runs=list(prov.get("runs", {})))
            except (OSError, yaml.YAMLError) as e:  # a damaged projection must not hide the others
                md["error"] = f"unreadable provenance: {e}"
            name = path.parent.name
            entries[name] = LocalCatalogEntry(
                name=name, description=f"projection {name}: {', '.join(md['runs'])} under scenario {md['scenario']}",
                driver="netcdf", args={"urlpath": str(path), "chunks": {}, "xarray_kwargs": {"engine": "netcdf4"}},
                metadata=md, catalog=self)
        self._entries = entries
