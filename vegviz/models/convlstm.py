"""ConvLSTM: the cell and the sequence-to-sequence model of the reference study.

The cell is the ConvLSTM of Shi et al. (2015, "Convolutional LSTM Network: A Machine
Learning Approach for Precipitation Nowcasting", arXiv:1506.04214, eq. 3) **without
peephole connections** (the Hadamard terms W_c * c of that paper), as in Keras
``ConvLSTM2D`` and most PyTorch implementations::

    [i, f, o, g] = conv([x_t, h_{t-1}], W) + b          'same' zero padding, stride 1
    c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g)
    h_t = sigmoid(o) * tanh(c_t)

Weight layout: one ``nn.Conv2d`` (``cell.conv``) over the concatenation ``[x_t, h_{t-1}]``
(``n_inputs`` then ``hidden`` input channels) producing ``4 * hidden`` channels: the gate
blocks in the order **i, f, o, g** (input, forget, output, candidate). This is the common
single-convolution layout, so weights from other implementations load with
:func:`load_single_conv_weights` (reorder the blocks first if theirs differ, e.g. Keras
stores i, f, c, o and separate input/recurrent kernels).

The model stacks ``layers`` cells (the study: one layer of 16 filters, 3 x 3 kernels) and
maps the last hidden state to LAI with a 1 x 1 convolution (``head``), applied to every
day of the sequence. 'same' padding keeps the 63 x 54 grid (any grid, in fact).

The recurrence runs on the fast path of :mod:`vegviz.models.recurrence` (``impl="fast"``,
default) or on the plain autograd loop (``impl="reference"``, for double backward and
for checking); both compute the same function.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .base import SequenceModel, State
from .recurrence import N_GATES, convlstm_scan, convlstm_scan_reference

__all__ = ["ConvLSTM", "ConvLSTMCell", "load_single_conv_weights"]

IMPLS = ("fast", "reference")


def _positive_int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return value


class ConvLSTMCell(nn.Module):
    """One ConvLSTM layer (see the module docstring for the equations and weight layout).

    Parameters
    ----------
    n_inputs
        Channels of the input maps.
    hidden
        Channels of the hidden and cell state ("filters" in Keras).
    kernel_size
        Odd size of the square kernel; 'same' padding of ``kernel_size // 2``.
    bias
        Whether the gate convolution has a bias.

    Notes
    -----
    Initialisation: PyTorch's default for the convolution weights; bias zero except the
    forget gate at 1, so the cell starts by remembering (Jozefowicz et al. 2015, ICML,
    "An empirical exploration of recurrent network architectures"; Keras' ``unit_forget_bias``).
    """

    def __init__(self, n_inputs: int, hidden: int = 16, kernel_size: int = 3, bias: bool = True):
        super().__init__()
        _positive_int(n_inputs, "n_inputs")
        _positive_int(hidden, "hidden")
        _positive_int(kernel_size, "kernel_size")
        if kernel_size % 2 == 0:
            raise ValueError(
                f"kernel_size must be odd for 'same' padding that keeps the grid, got {kernel_size}. "
                f"Fix: use {kernel_size - 1} or {kernel_size + 1}"
            )
        self.n_inputs, self.hidden, self.kernel_size = n_inputs, hidden, kernel_size
        self.conv = nn.Conv2d(n_inputs + hidden, N_GATES * hidden, kernel_size, padding=kernel_size // 2, bias=bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.conv.reset_parameters()
        if self.conv.bias is not None:
            with torch.no_grad():
                self.conv.bias.zero_()
                self.conv.bias[self.hidden:2 * self.hidden] = 1.0

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
        """One time step: x (batch, n_inputs, lat, lon), state (h, c) -> new (h, c)."""
        h, c = state
        gates = self.conv(torch.cat([x, h], dim=1))
        i, f, o, g = torch.split(gates, self.hidden, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c

    def scan(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor], impl: str = "fast",
             head: nn.Conv2d | None = None):
        """The whole sequence x (batch, time, n_inputs, lat, lon) from ``state`` = (h0, c0).

        Returns hs (batch, time, hidden, lat, lon), the final (h, c), and the output of the
        1 x 1 convolution ``head`` (batch, time, 1, lat, lon) on every day (None without).
        """
        scan = convlstm_scan if impl == "fast" else convlstm_scan_reference
        head_args = (None, None) if head is None else (head.weight, head.bias)
        hs, h, c, y = scan(x, self.conv.weight, self.conv.bias, *state, *head_args)
        return hs, (h, c), y

    def load_single_conv_weights(self, weight: torch.Tensor, bias: torch.Tensor | None = None) -> None:
        """Copy weights from the single-convolution layout (see module docstring).

        ``weight``: (4 * hidden, n_inputs + hidden, k, k), gate blocks i, f, o, g; input
        channels x then h. ``bias``: (4 * hidden,) or None (then the bias is zeroed).
        """
        expected = tuple(self.conv.weight.shape)
        if tuple(weight.shape) != expected:
            raise ValueError(
                f"weight has shape {tuple(weight.shape)}, this cell needs {expected} = (4 * hidden, "
                f"n_inputs + hidden, k, k) with hidden={self.hidden}, n_inputs={self.n_inputs}, "
                f"k={self.kernel_size}. Fix: build the cell with the source's sizes"
            )
        if bias is not None and tuple(bias.shape) != (expected[0],):
            raise ValueError(f"bias has shape {tuple(bias.shape)}, expected ({expected[0]},)")
        if self.conv.bias is None and bias is not None and bool(torch.any(bias != 0)):
            raise ValueError("this cell was built with bias=False but a non-zero bias was given")
        with torch.no_grad():
            self.conv.weight.copy_(weight)
            if self.conv.bias is not None and bias is None:
                self.conv.bias.zero_()
            elif self.conv.bias is not None:
                self.conv.bias.copy_(bias)


class ConvLSTM(SequenceModel):
    """Sequence-to-sequence ConvLSTM: climate maps in, one LAI map per day out.

    Parameters
    ----------
    n_inputs
        Input channels (climate variables) of ``x``.
    filters
        Hidden channels per layer; an int (all layers) or one int per layer.
        Default 16 as in the reference study.
    layers
        Number of stacked ConvLSTM layers (default 1 as in the study, or
        ``len(filters)`` when ``filters`` is a sequence).
    kernel_size
        Odd kernel size of every layer (default 3).
    impl
        ``"fast"`` (default) or ``"reference"`` recurrence; same function.

    Notes
    -----
    ``forward(x, state=None) -> (y, state)``: x (batch, time, n_inputs, lat, lon) float32
    without NaN; y (batch, time, 1, lat, lon); state one (h, c) per layer.

    Cost at the study scale (batch 8, 16 filters, 63 x 54, 2 CPU threads): ~15 ms and
    ~10 MiB of memory per day of sequence for forward + backward, about half the time and
    memory of a straightforward implementation (:mod:`vegviz.models.recurrence`).
    """

    def __init__(
        self,
        n_inputs: int,
        filters: int | Sequence[int] = 16,
        layers: int | None = None,
        kernel_size: int = 3,
        impl: str = "fast",
    ):
        super().__init__()
        _positive_int(n_inputs, "n_inputs")
        sizes = _layer_sizes(filters, layers)
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
        self.n_inputs, self.hidden_sizes, self.impl = n_inputs, sizes, impl
        n_in = self._network_inputs()
        self.cells = nn.ModuleList()
        for k in sizes:
            self.cells.append(ConvLSTMCell(n_in, k, kernel_size))
            n_in = k
        # 1 x 1 convolution: the same linear map from hidden state to LAI in every cell
        self.head = nn.Conv2d(sizes[-1], 1, kernel_size=1)

    # hooks for variants (see physics.py)
    def _network_inputs(self) -> int:
        return self.n_inputs

    def _network_x(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def _output(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return y

    def forward(self, x: torch.Tensor, state: State | None = None):
        self.check_input(x)
        state = self.check_state(state, x)
        _, y, new_state = self.recur(self._network_x(x), state)
        return self._output(y, x), new_state

    def recur(self, x: torch.Tensor, state: State):
        """Run all layers: hidden states of the last layer (batch, time, hidden, lat, lon),
        the head's output on them (batch, time, 1, lat, lon) and the new state."""
        new_state = []
        last = len(self.cells) - 1
        for layer, (cell, pair) in enumerate(zip(self.cells, state)):
            # the last layer runs the head inside the recurrence (a fused backward pass)
            x, pair, y = cell.scan(x, pair, self.impl, self.head if layer == last else None)
            new_state.append(pair)
        return x, y, new_state

    def load_single_conv_weights(self, weight: torch.Tensor, bias: torch.Tensor | None = None, layer: int = 0):
        """Load layer ``layer`` from the single-convolution layout (see :class:`ConvLSTMCell`)."""
        if not -len(self.cells) <= layer < len(self.cells):
            raise IndexError(f"layer {layer} does not exist: the model has {len(self.cells)} layer(s)")
        self.cells[layer].load_single_conv_weights(weight, bias)

    def extra_repr(self) -> str:
        return f"n_inputs={self.n_inputs}, impl={self.impl!r}"


def _layer_sizes(filters, layers) -> tuple[int, ...]:
    if isinstance(filters, Sequence) and not isinstance(filters, str):
        sizes = tuple(_positive_int(k, "filters") for k in filters)
        if not sizes:
            raise ValueError("filters must name at least one layer")
        if layers is not None and layers != len(sizes):
            raise ValueError(f"layers={layers} but filters lists {len(sizes)} layer sizes {sizes}. Fix: drop one")
        return sizes
    return (_positive_int(filters, "filters"),) * _positive_int(1 if layers is None else layers, "layers")


def load_single_conv_weights(
    model_or_cell: ConvLSTM | ConvLSTMCell, weight: torch.Tensor, bias: torch.Tensor | None = None, layer: int = 0
) -> None:
    """Load ``weight``/``bias`` in the single-convolution layout into a cell or a model layer.

    The layout: one ``nn.Conv2d`` over ``torch.cat([x, h], dim=1)`` producing
    ``4 * hidden`` channels, gate blocks in the order i, f, o, g.
    """
    if isinstance(model_or_cell, ConvLSTMCell):
        if layer != 0:
            raise ValueError("a cell has a single layer; drop the layer argument")
        model_or_cell.load_single_conv_weights(weight, bias)
    elif isinstance(model_or_cell, ConvLSTM):
        model_or_cell.load_single_conv_weights(weight, bias, layer)
    else:
        raise TypeError(f"expected a ConvLSTM or ConvLSTMCell, got {type(model_or_cell).__name__}")
