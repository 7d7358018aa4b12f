"""Physics-encoded ConvLSTM: the ConvLSTM as a bias corrector of a process-based LAI model.

The process simulation (``lai_process``, from :mod:`vegviz.physics`) is one channel of
``x``, at index ``process_channel`` (default: the last one), so every model of the
registry keeps the call ``model(x, state)``. Three formulations (``mode``):

``"channel"`` (default)
    ``lai_process`` is one more input channel and the network predicts LAI itself. This is
    what the reference study did, so it is the default: results stay comparable to it.
``"residual"``
    The network sees the climate channels only and predicts a correction:
    ``y = lai_process + head(h)``. This makes the bias-corrector role explicit: with a
    zero head the model *is* the process model, and it can only add what the climate
    sequence explains beyond it.
``"both"``
    The network sees all channels (``lai_process`` included) and predicts the correction.

In ``"residual"`` and ``"both"`` the head starts at zero, so training starts from the
process model. The process channel is added to the output as given, so it must be on the
scale of the target: if the trainer normalises inputs, it must scale ``lai_process`` with
the *target's* statistics (or not at all when the target is not normalised).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .convlstm import ConvLSTM

__all__ = ["PhysicsConvLSTM", "MODES"]

MODES = ("channel", "residual", "both")


class PhysicsConvLSTM(ConvLSTM):
    """ConvLSTM with ``lai_process`` as channel ``process_channel`` of ``x`` (see module doc).

    Parameters
    ----------
    n_inputs
        Channels of ``x``, the ``lai_process`` channel included.
    process_channel
        Index of ``lai_process`` among them (negative counts from the end).
    mode
        ``"channel"`` (default, as in the study), ``"residual"`` or ``"both"``.
    filters, layers, kernel_size, impl
        As for :class:`~vegviz.models.ConvLSTM`.
    """

    def __init__(
        self,
        n_inputs: int,
        process_channel: int = -1,
        mode: str = "channel",
        filters: int | Sequence[int] = 16,
        layers: int | None = None,
        kernel_size: int = 3,
        impl: str = "fast",
    ):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if isinstance(n_inputs, int) and mode == "residual" and n_inputs < 2:
            raise ValueError("mode='residual' needs at least one climate channel besides lai_process")
        if isinstance(process_channel, bool) or not isinstance(process_channel, int) or not (
            isinstance(n_inputs, int) and -n_inputs <= process_channel < n_inputs
        ):
            raise ValueError(
                f"process_channel={process_channel!r} is not a channel index of x with n_inputs={n_inputs}. "
                "Fix: pass the position of lai_process among the input channels"
            )
        # plain attributes may precede nn.Module.__init__; ConvLSTM.__init__ needs them
        self.mode = mode
        self.process_channel = process_channel % n_inputs
        super().__init__(n_inputs, filters=filters, layers=layers, kernel_size=kernel_size, impl=impl)
        if mode != "channel":
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def _network_inputs(self) -> int:
        return self.n_inputs - 1 if self.mode == "residual" else self.n_inputs

    def _network_x(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode != "residual":
            return x
        k = self.process_channel
        return torch.cat([x[:, :, :k], x[:, :, k + 1:]], dim=2)

    def _output(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "channel":
            return y
        k = self.process_channel
        return y + x[:, :, k:k + 1]

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, process_channel={self.process_channel}, mode={self.mode!r}"
