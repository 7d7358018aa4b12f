"""Models of the study: ConvLSTM, physics-encoded ConvLSTM, LSTM baseline, and a registry.

All share one call: ``y, state = model(x, state=None)`` with x (batch, time, channels,
lat, lon) float32 without NaN and y (batch, time, 1, lat, lon); see :mod:`.base`.

>>> from vegviz.models import build_model, list_models
>>> model = build_model("convlstm", n_inputs=5)          # 1 layer, 16 filters, 3 x 3
"""
from .base import SequenceModel, State, detach_state
from .convlstm import ConvLSTM, ConvLSTMCell, load_single_conv_weights
from .lstm import LSTMBaseline
from .physics import MODES as PHYSICS_MODES
from .physics import PhysicsConvLSTM
from .recurrence import convlstm_scan, convlstm_scan_reference
from .registry import MODELS, build_model, hparams_of, list_models

__all__ = [
    "MODELS",
    "PHYSICS_MODES",
    "ConvLSTM",
    "ConvLSTMCell",
    "LSTMBaseline",
    "PhysicsConvLSTM",
    "SequenceModel",
    "State",
    "build_model",
    "convlstm_scan",
    "convlstm_scan_reference",
    "detach_state",
    "hparams_of",
    "list_models",
    "load_single_conv_weights",
]
