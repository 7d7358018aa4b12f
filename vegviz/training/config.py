"""One configuration object for a training run, saved as YAML with every run.

The defaults reproduce the reference study (DESIGN.md): a one-layer ConvLSTM with 16
filters and 3 x 3 kernels, AdamW with early stopping on the validation loss, and the
temporal split train 1981-2001 / validation 2002-2008 / test 2009-2016 (``split: temporal``;
``warm``, ``cool``, ``dry`` and ``wet`` give the differential split-sample test of
:mod:`vegviz.training.split`). Everything a run
depends on lives here, so a saved ``config.yaml`` is enough to repeat it::

    cfg = Config(model="convlstm_physics", max_epochs=50)
    cfg.to_yaml("my_run.yaml")
    cfg = Config.from_yaml("my_run.yaml")

Unknown keys and invalid values raise :class:`ConfigError` naming the key, the problem
and the valid choices.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

import pandas as pd
import yaml

__all__ = ["Config", "ConfigError", "ModelConfig", "OptimizerConfig", "Periods", "PHYSICS_INPUT", "SPLITS"]

#: the input channel the physics-encoded model adds to the forcings
PHYSICS_INPUT = "lai_process"
#: models that take ``lai_process`` as an extra input channel
PHYSICS_MODELS = ("convlstm_physics",)
#: models known without importing vegviz.models (used only when the registry is unavailable)
_KNOWN_MODELS = ("convlstm", "convlstm_physics", "lstm")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
LOSSES = ("mse", "mae", "huber")
SCHEDULERS = ("none", "plateau")
#: how train/validation/test are chosen: the temporal split, or the differential split-sample test
#: (Klemes 1986) named after the climate of its test years (vegviz.training.split)
SPLITS = ("temporal", "warm", "cool", "dry", "wet")
#: default halo of tiled prediction (cells): measured with benchmarks/bench_tiles.py (README, "Scale")
HALO = 12


class ConfigError(ValueError):
    """A configuration key or value is invalid; the message names it and the fix."""


@dataclass
class ModelConfig:
    """Model hyperparameters: the shared ones, plus model-specific ``options``.

    ``filters`` (hidden channels per layer), ``layers`` (stacked recurrent layers) and
    ``kernel`` (spatial kernel size) are passed to ``vegviz.models.build_model`` under the
    registry's names (``filters``/``kernel_size`` for the ConvLSTMs, ``hidden`` for the
    LSTM, which has no kernel); ``options`` are passed on unchanged (e.g.
    ``{"mode": "residual"}`` for ``convlstm_physics``).
    """

    filters: int = 16
    layers: int = 1
    kernel: int = 3
    options: dict = field(default_factory=dict)


@dataclass
class Periods:
    """The split: each period is [start, end] dates, inclusive, as ISO strings (the temporal split), or
    a list of calendar years (the differential split-sample test, ``Config.split`` other than
    ``temporal``; :mod:`vegviz.training.split` fills them in from the data). Which days belong to a
    period is decided in one place, :func:`vegviz.evaluation.periods.period_days`.
    """

    train: tuple = ("1981-01-01", "2001-12-31")
    validation: tuple = ("2002-01-01", "2008-12-31")
    test: tuple = ("2009-01-01", "2016-12-31")

    def slice(self, name: str) -> slice:
        start, end = self.bounds(name)
        return slice(start, end)

    def bounds(self, name: str) -> tuple[pd.Timestamp, pd.Timestamp]:
        """(first, last) day of a period; for a year set its span (1 January .. 31 December)."""
        from ..evaluation.periods import resolve_period

        return resolve_period(getattr(self, name))

    @property
    def year_sets(self) -> bool:
        """True when the periods are lists of years (a resolved differential split)."""
        from ..evaluation.periods import is_year_set

        return is_year_set(self.train)


@dataclass
class OptimizerConfig:
    """AdamW (Loshchilov & Hutter 2019, arXiv:1711.05101) and an optional LR schedule.

    ``scheduler="plateau"`` multiplies the learning rate by ``lr_factor`` after
    ``lr_patience`` epochs without a better validation loss; ``"none"`` keeps it constant.
    ``grad_clip`` (global L2 norm; 0 = off) guards against exploding recurrent gradients.
    """

    lr: float = 3e-3
    weight_decay: float = 1e-2
    betas: tuple[float, float] = (0.9, 0.999)
    scheduler: str = "plateau"
    lr_factor: float = 0.5
    lr_patience: int = 3
    grad_clip: float = 1.0


@dataclass
class Config:
    """Everything a training run depends on (see the module docstring).

    Static inputs: ``statics`` names (lat, lon) fields repeated on every day as extra
    input channels; ``landcover`` (categorical IGBP codes) becomes one 0/1 channel per
    class present in the training mask, any other static is standardised. Without them a
    network must guess from the weather alone what grows in a cell. ``()`` turns them off.

    Sampling: each training sample is ``burn_in + window`` consecutive days; the model
    runs over all of them but only the last ``window`` days are scored (the first
    ``burn_in`` days spin up the recurrent state). Samples start every ``stride`` days
    from a random offset (``None``: ``stride = window``, scored windows tile the period
    without overlap); a stride shorter than the window gives overlapping samples and more
    optimiser steps per epoch. The defaults (stride 122 days, batch 2) give the full
    basin's 21 training years about 60 overlapping samples, 31 optimiser steps per epoch;
    tiling year-long windows in batches of 8 gave 3 steps per epoch, too few to learn in
    a CPU budget. Gradients are truncated every
    ``chunk`` days (truncated BPTT: the state is carried across chunks, detached), which
    bounds the memory of the backward pass; see :mod:`vegviz.training.trainer`.

    Scale (:mod:`vegviz.training.reader`): windows are read out of core through a cache of
    ``cache_mb`` MiB of decoded blocks. ``patch`` (cells, square) trains on random spatial
    patches of that size that hold at least ``patch_min_basin`` basin cells; ``None`` (the
    study's setting) trains on the whole domain. ``tile`` (cells, square) validates and
    predicts in tiles, each run with ``halo`` extra cells on every side whose outputs are
    dropped (a ConvLSTM's receptive field grows every day, so the halo bounds, but does not
    remove, the difference to a whole-domain run; see the README for the measured error);
    ``None`` runs the whole domain at once.
    """

    data: str = "virtual_ucrb"
    model: str = "convlstm"
    hparams: ModelConfig = field(default_factory=ModelConfig)
    inputs: tuple[str, ...] = ("precip", "tair", "tmin", "swdown", "vpd")
    statics: tuple[str, ...] = ("elevation", "landcover")
    target: str = "lai"
    split: str = "temporal"
    periods: Periods = field(default_factory=Periods)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    loss: str = "mse"
    max_epochs: int = 25
    patience: int = 8
    window: int = 365
    burn_in: int = 90
    stride: int | None = 122
    chunk: int = 60
    batch_size: int = 2
    patch: int | None = None
    patch_min_basin: float = 0.1
    tile: int | None = None
    halo: int = HALO
    cache_mb: int = 1024
    seed: int = 42
    device: str = "auto"
    precision: str = "auto"
    num_threads: int | None = None
    deterministic: bool = True
    name: str | None = None

    def __post_init__(self):
        for key, cls in _NESTED.items():  # Config(hparams={"filters": 8}) is a convenience
            value = getattr(self, key)
            if isinstance(value, dict):
                setattr(self, key, _from_dict(cls, value, f"{key}."))
        self.validate()

    # ------------------------------------------------------------------ derived values
    @property
    def channels(self) -> tuple[str, ...]:
        """The model's input channels, in order: the forcings, then lai_process for physics models."""
        extra = (PHYSICS_INPUT,) if self.model in PHYSICS_MODELS and PHYSICS_INPUT not in self.inputs else ()
        return tuple(self.inputs) + extra

    @property
    def sample_days(self) -> int:
        return self.burn_in + self.window

    # ------------------------------------------------------------------ validation
    def validate(self) -> "Config":
        """Check every value; raise ConfigError naming the first problem and its fix."""
        _check_type(self, "")
        _choice("model", self.model, _model_names())
        _check_options(self.model, self.hparams.options)
        _choice("loss", self.loss, LOSSES)
        _choice("device", self.device, DEVICES)
        _choice("precision", self.precision, PRECISIONS)
        _choice("optimizer.scheduler", self.optimizer.scheduler, SCHEDULERS)
        _choice("split", self.split, SPLITS)
        if not isinstance(self.data, (str, os.PathLike)) or not str(self.data):
            raise ConfigError("data: must be a catalog entry name or a path to a Zarr/NetCDF store")
        if not self.inputs:
            raise ConfigError("inputs: the list of input variables is empty. Fix: name at least one forcing, "
                              "e.g. ['precip', 'tair', 'tmin', 'swdown', 'vpd']")
        if not all(isinstance(v, str) for v in self.inputs):
            raise ConfigError(f"inputs: expected variable names, got {list(self.inputs)!r}")
        if len(set(self.inputs)) != len(self.inputs):
            raise ConfigError(f"inputs: {list(self.inputs)} names a variable twice")
        _check_inputs(self.inputs)
        if not all(isinstance(v, str) for v in self.statics) or len(set(self.statics)) != len(self.statics):
            raise ConfigError(f"statics: expected distinct static variable names, got {list(self.statics)!r}")
        if self.target in self.inputs:
            raise ConfigError(f"inputs: the target {self.target!r} cannot also be an input")
        for key, lo in (("max_epochs", 1), ("patience", 1), ("window", 1), ("burn_in", 0), ("chunk", 1),
                        ("batch_size", 1), ("hparams.filters", 1), ("hparams.layers", 1), ("hparams.kernel", 1)):
            value = _get(self, key)
            if value < lo:
                raise ConfigError(f"{key}: must be >= {lo}, got {value}")
        if self.hparams.kernel % 2 == 0:
            raise ConfigError(f"hparams.kernel: must be odd ('same' padding keeps the grid), got {self.hparams.kernel}")
        if self.stride is not None and self.stride < 1:
            raise ConfigError(f"stride: must be >= 1 day or null (= window), got {self.stride}")
        for key in ("patch", "tile"):
            value = getattr(self, key)
            if value is not None and value < 4:
                raise ConfigError(f"{key}: must be at least 4 cells or null (the whole domain), got {value}")
        if self.halo < 0:
            raise ConfigError(f"halo: must be >= 0 cells, got {self.halo}")
        if not 0 <= self.patch_min_basin <= 1:
            raise ConfigError(f"patch_min_basin: the share of basin cells a patch needs must be in [0, 1], "
                              f"got {self.patch_min_basin}")
        if self.cache_mb < 0:
            raise ConfigError(f"cache_mb: must be >= 0 MiB, got {self.cache_mb}")
        if self.num_threads is not None and self.num_threads < 1:
            raise ConfigError(f"num_threads: must be >= 1 or null (torch default), got {self.num_threads}")
        if self.window <= self.burn_in:
            raise ConfigError(f"window: the scored window ({self.window} days) must be longer than the burn-in "
                              f"({self.burn_in} days). Fix: increase window or reduce burn_in")
        o = self.optimizer
        if not o.lr > 0:
            raise ConfigError(f"optimizer.lr: must be > 0, got {o.lr}")
        if o.weight_decay < 0 or o.grad_clip < 0:
            raise ConfigError("optimizer.weight_decay and optimizer.grad_clip must be >= 0")
        if not 0 < o.lr_factor < 1:
            raise ConfigError(f"optimizer.lr_factor: must be in (0, 1), got {o.lr_factor}")
        self._check_periods()
        return self

    def _check_periods(self) -> None:
        from ..evaluation.periods import is_year_set

        kinds = {name: is_year_set(getattr(self.periods, name)) for name in ("train", "validation", "test")}
        if any(kinds.values()):
            return self._check_year_sets(kinds)
        spans = {}
        for name in ("train", "validation", "test"):
            value = getattr(self.periods, name)
            if len(value) != 2:
                raise ConfigError(f"periods.{name}: expected [start, end], got {value!r}")
            try:
                start, end = (pd.Timestamp(v) for v in value)
            except (ValueError, TypeError) as e:
                raise ConfigError(f"periods.{name}: {value!r} is not a pair of dates ({e}). "
                                  "Fix: use ISO dates like ['1981-01-01', '2001-12-31']") from None
            if end < start:
                raise ConfigError(f"periods.{name}: ends ({end:%Y-%m-%d}) before it starts ({start:%Y-%m-%d})")
            spans[name] = (start, end)
        order = list(spans)
        for a, b in zip(order, order[1:]):
            if spans[b][0] <= spans[a][1]:
                raise ConfigError(
                    f"periods: {b} ({spans[b][0]:%Y-%m-%d}..{spans[b][1]:%Y-%m-%d}) must start after {a} ends "
                    f"({spans[a][1]:%Y-%m-%d}); the periods must be in the order train < validation < test "
                    "and must not overlap")
        self._check_train_days(*spans["train"])

    def _check_year_sets(self, kinds: dict) -> None:
        if not all(kinds.values()):
            raise ConfigError(f"periods: {', '.join(k for k, v in kinds.items() if v)} hold lists of years, "
                              f"{', '.join(k for k, v in kinds.items() if not v)} do not. Fix: give every period "
                              "as [start, end] dates (temporal split) or every one as a list of years")
        if self.split == "temporal":
            raise ConfigError("periods: lists of years are the differential split-sample test, but split is "
                              f"'temporal'. Fix: set split to one of {', '.join(SPLITS[1:])} (the years are then "
                              "chosen from the data), or give the periods as [start, end] dates")
        sets = {name: set(getattr(self.periods, name)) for name in kinds}
        for a, b in (("train", "validation"), ("train", "test"), ("validation", "test")):
            common = sorted(sets[a] & sets[b])
            if common:
                raise ConfigError(f"periods: the years {common} are in both {a} and {b}. Fix: every year "
                                  "belongs to one period only")
        self._check_train_days(*self.periods.bounds("train"))

    def _check_train_days(self, start, end) -> None:
        days = (end - start).days + 1
        if days < self.sample_days:
            raise ConfigError(f"periods.train: {days} days cannot hold one sample of burn_in + window = "
                              f"{self.sample_days} days. Fix: lengthen the period or shorten window/burn_in")

    @classmethod
    def for_data(cls, data, **settings) -> "Config":
        """A Config for ``data`` that takes the temporal split from the catalog entry's metadata.

        Catalog entries may recommend a split under ``metadata['periods']`` (the small
        virtual basin covers 1998-2005, so the study's 1981-2016 split does not fit it);
        an explicit ``periods`` in ``settings`` wins. Other entries and paths get the
        study's defaults.
        """
        d = dict(settings)
        d["data"] = data
        if "periods" not in d:
            recommended = recommended_periods(data)
            if recommended:
                d["periods"] = recommended
        return cls.from_dict(d)

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict:
        """Plain Python types only (lists, not tuples), ready for YAML or a checkpoint."""
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: dict | None) -> "Config":
        """Build a Config from a (possibly partial, possibly nested) dict; unknown keys are errors."""
        return _from_dict(cls, d or {}, "")

    def replace(self, **changes) -> "Config":
        """A copy with top-level fields changed (nested ones as dicts or dataclasses)."""
        d = self.to_dict()
        for k, v in changes.items():
            d[k] = _plain(dataclasses.asdict(v)) if dataclasses.is_dataclass(v) else v
        return Config.from_dict(d)

    def to_yaml(self, path=None) -> str:
        """The YAML text; also written to ``path`` when given."""
        text = yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_yaml(cls, path_or_text) -> "Config":
        """Read a Config from a YAML file (or from YAML text containing a newline)."""
        text = str(path_or_text)
        if "\n" not in text:
            text = Path(path_or_text).read_text()
        d = yaml.safe_load(text)
        if d is not None and not isinstance(d, dict):
            raise ConfigError(f"config YAML must be a mapping of keys to values, got {type(d).__name__}")
        return cls.from_dict(d)


# ---------------------------------------------------------------------------- helpers

def recommended_periods(data) -> dict | None:
    """The ``periods`` a catalog entry recommends in its metadata (None for paths and other entries)."""
    if not isinstance(data, str) or Path(data).expanduser().exists():
        return None
    try:
        from ..catalog import metadata, open_catalog

        cat = open_catalog()
        if data not in cat:
            return None
        periods = metadata(cat[data]).get("periods")
    except (ImportError, FileNotFoundError):
        return None
    return {k: list(v) for k, v in periods.items()} if periods else None


def _model_names() -> tuple[str, ...]:
    try:
        from ..models import list_models
    except ImportError:  # vegviz.models not installed yet: fall back to the documented names
        return _KNOWN_MODELS
    return tuple(list_models())


def _check_options(model: str, options: dict) -> None:
    try:
        from ..models import hparams_of
    except ImportError:
        return
    accepted = {k for k in hparams_of(model) if k not in ("filters", "hidden", "layers", "kernel_size")}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ConfigError(f"hparams.options: model {model!r} has no option(s) {unknown}; valid options are "
                          f"{', '.join(sorted(accepted)) or 'none'} (filters, layers and kernel are set by "
                          "hparams.filters/layers/kernel)")


def _check_inputs(inputs) -> None:
    """Every input is a daily variable of the model-ready data set (vegviz.contract): a forcing or lai_process."""
    from ..contract import VARIABLES

    valid = [n for n, spec in VARIABLES.items() if spec.role in ("forcing", "physics")]
    for name in inputs:
        if name in valid:
            continue
        if VARIABLES.get(name) is not None and VARIABLES[name].role == "static":
            raise ConfigError(f"inputs: {name!r} is a static (lat, lon) field, not a daily input. Fix: list it under "
                              "statics instead")
        raise ConfigError(f"inputs: {name!r} is not a daily input variable of the model-ready data set; valid inputs "
                          f"are {', '.join(valid)}. Fix: correct the name (e.g. --set 'inputs=[precip, tair, tmin, "
                          "swdown, vpd]') or drop it")


def _choice(key: str, value, valid) -> None:
    if value not in valid:
        raise ConfigError(f"{key}: unknown value {value!r}; valid values are {', '.join(map(repr, valid))}")


def _get(obj, dotted: str):
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def _plain(x):
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, os.PathLike):
        return os.fspath(x)
    return x


def _from_dict(cls, d: dict, prefix: str):
    if not isinstance(d, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {d!r}")
    valid = {f.name: f for f in fields(cls)}
    for key in d:
        if key not in valid:
            raise ConfigError(f"{prefix}{key}: unknown configuration key; valid keys"
                              f"{' in ' + prefix.rstrip('.') if prefix else ''} are {', '.join(valid)}")
    kwargs = {}
    for key, value in d.items():
        nested = _NESTED.get(valid[key].name) if cls is Config else None
        if nested is not None and not isinstance(value, nested):
            value = _from_dict(nested, value or {}, f"{prefix}{key}.")
        kwargs[key] = value
    if cls is Config:
        return cls(**kwargs)
    obj = cls(**kwargs)
    _check_type(obj, prefix)
    return obj


_NESTED = {"hparams": ModelConfig, "periods": Periods, "optimizer": OptimizerConfig}

# expected Python types of every field (YAML gives lists for tuples, ints for floats)
_TYPES: dict[str, tuple] = {
    "data": (str, os.PathLike), "model": (str,), "target": (str,), "split": (str,), "loss": (str,), "device": (str,),
    "precision": (str,), "name": (str, type(None)), "num_threads": (int, type(None)), "deterministic": (bool,),
    "max_epochs": (int,), "patience": (int,), "window": (int,), "burn_in": (int,), "chunk": (int,),
    "stride": (int, type(None)), "batch_size": (int,), "patch": (int, type(None)), "tile": (int, type(None)),
    "patch_min_basin": (float, int), "halo": (int,), "cache_mb": (int,), "seed": (int,), "inputs": (list, tuple), "statics": (list, tuple),
    "filters": (int,), "layers": (int,), "kernel": (int,), "options": (dict,),
    "train": (list, tuple), "validation": (list, tuple), "test": (list, tuple),
    "lr": (float, int), "weight_decay": (float, int), "betas": (list, tuple), "scheduler": (str,),
    "lr_factor": (float, int), "lr_patience": (int,), "grad_clip": (float, int),
}


def _check_type(obj, prefix: str) -> None:
    """Type-check (and normalise lists to tuples) the fields of a config dataclass."""
    for f in fields(obj):
        value = getattr(obj, f.name)
        if f.name in ("hparams", "periods", "optimizer"):
            if not isinstance(value, _NESTED[f.name]):
                raise ConfigError(f"{prefix}{f.name}: expected a mapping of "
                                  f"{', '.join(x.name for x in fields(_NESTED[f.name]))}, got {value!r}")
            _check_type(value, f"{prefix}{f.name}.")
            continue
        expected = _TYPES.get(f.name)
        if expected is None:
            continue
        # bool is an int in Python; a YAML 'true' must not pass as a number
        bad_bool = isinstance(value, bool) and bool not in expected
        if bad_bool or not isinstance(value, expected):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in expected)
            raise ConfigError(f"{prefix}{f.name}: expected {names}, got {value!r}")
        if isinstance(value, list):
            value = tuple(value)
        if f.name in ("train", "validation", "test"):
            from ..evaluation.periods import is_year_set

            if is_year_set(value):  # a list of years (differential split), kept sorted as plain ints
                value = tuple(sorted(int(v) for v in value))
            else:
                value = tuple(str(pd.Timestamp(v).date()) if not isinstance(v, str) else v for v in value)
        if f.name in ("lr", "weight_decay", "lr_factor", "grad_clip", "patch_min_basin"):
            value = float(value)
        if f.name == "betas":
            value = tuple(float(b) for b in value)
        setattr(obj, f.name, value)
