"""Models by name, so that configurations, the CLI and dashboards can pick one by string."""
from __future__ import annotations

import inspect

from .base import SequenceModel
from .convlstm import ConvLSTM
from .lstm import LSTMBaseline
from .physics import PhysicsConvLSTM

__all__ = ["MODELS", "build_model", "list_models"]

#: name -> model class; every class is built as ``cls(n_inputs, **hparams)``
MODELS: dict[str, type[SequenceModel]] = {
    "convlstm": ConvLSTM,
    "convlstm_physics": PhysicsConvLSTM,
    "lstm": LSTMBaseline,
}


def list_models() -> list[str]:
    """Names accepted by :func:`build_model`."""
    return sorted(MODELS)


def hparams_of(name: str) -> dict[str, object]:
    """Hyperparameters of model ``name`` with their defaults (everything but ``n_inputs``)."""
    params = inspect.signature(_model_class(name)).parameters
    return {k: p.default for k, p in params.items() if k != "n_inputs"}


def build_model(name: str, n_inputs: int, **hparams) -> SequenceModel:
    """A new model ``name`` for ``n_inputs`` input channels, e.g.
    ``build_model("convlstm", 5, filters=16)`` or
    ``build_model("convlstm_physics", 6, process_channel=5, mode="residual")``.
    """
    cls = _model_class(name)
    unknown = sorted(set(hparams) - set(hparams_of(name)))
    if unknown:
        raise ValueError(
            f"model {name!r} has no hyperparameter(s) {unknown}; it accepts {hparams_of(name)} (defaults shown)"
        )
    return cls(n_inputs, **hparams)


def _model_class(name: str) -> type[SequenceModel]:
    try:
        return MODELS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown model {name!r}; choose one of {list_models()}") from None
