"""LSTM baseline: the same recurrence without spatial context.

Every grid cell is its own sequence with the same inputs as the ConvLSTM, and all cells
share the weights. That is exactly a ConvLSTM with a 1 x 1 kernel: the "convolution" is
then a per-cell linear map of ``[x_t, h_{t-1}]``, which is the LSTM of Hochreiter &
Schmidhuber (1997) with a forget gate (Gers et al. 2000) as in ``torch.nn.LSTM``.

Implementation choice: the 1 x 1 ConvLSTM on the fast recurrence of
:mod:`vegviz.models.recurrence`, rather than ``nn.LSTM`` over ``batch * lat * lon``
sequences. Both are the same math (:meth:`LSTMBaseline.load_torch_lstm` maps one onto the
other, and the tests check it); on 2 CPU threads at the study scale (batch 8, 90 days,
63 x 54 cells, 16 hidden) forward + backward took 0.50 s for the 1 x 1 ConvLSTM against
1.16 s for ``nn.LSTM`` over 27216 sequences (best of 4, reshapes included). It also keeps
the state layout of the other models.

Default hidden size 16: the same state size per cell as the ConvLSTM's 16 filters, so
the comparison isolates spatial context (the reference study's table gives no other size).

Without spatial context the model need not run outside the basin (``per_cell = True``):
``model(x, state, cells=mask)`` gathers the ``mask`` cells into a compact (n, 1) grid, runs
the same recurrence there and scatters the output back onto the full grid (0.0 outside
the mask); the state stays compact, (batch, hidden, n, 1) per layer. Outputs and
gradients are those of the full-grid run on those cells up to float32 rounding (the
tests check it). On the UCRB window (1,886 of 3,402 cells; batch 2, 60 days, 12 inputs,
2 threads; ``benchmarks/bench_lstm_cells.py`` on a shared 2-core AMD EPYC) forward +
backward took 0.8-0.9x the full-grid time (best of 11; the per-step weight-gradient
convolution of the fast path costs ~3 ms on 2 threads whatever the number of cells), a
forward pass without gradient 0.65-0.8x.
"""
from __future__ import annotations

import torch
from torch import nn

from .base import State, gather_cells, scatter_cells
from .convlstm import ConvLSTM

__all__ = ["LSTMBaseline"]


class LSTMBaseline(ConvLSTM):
    """Per-cell LSTM with weights shared across cells (a 1 x 1 ConvLSTM).

    Parameters
    ----------
    n_inputs
        Input channels of ``x``.
    hidden
        Hidden size per layer (int, or one int per layer); default 16.
    layers
        Number of stacked LSTM layers (default 1).
    impl
        ``"fast"`` (default) or ``"reference"`` recurrence.

    Notes
    -----
    ``forward(x, state=None, cells=None) -> (y, state)``: as :class:`~vegviz.models.ConvLSTM`,
    and with ``cells`` (bool (lat, lon) on x's device) only those cells are computed: y is
    0.0 elsewhere and the state is the compact one of those cells, (batch, hidden, n, 1)
    per layer in row-major order; pass the same ``cells`` for every chunk that carries it.
    Inputs outside ``cells`` are not read (they may be NaN) and get no gradient.
    """

    #: no spatial context: ``forward`` accepts ``cells`` (see :mod:`vegviz.models.base`)
    per_cell = True

    def __init__(self, n_inputs: int, hidden: int = 16, layers: int | None = None, impl: str = "fast"):
        super().__init__(n_inputs, filters=hidden, layers=layers, kernel_size=1, impl=impl)

    def forward(self, x: torch.Tensor, state: State | None = None, cells: torch.Tensor | None = None):
        if cells is None:
            return super().forward(x, state)
        self.check_input(x, cells)
        state = self.check_state(state, x, cells)
        xc = gather_cells(x, cells)  # (batch, time, channels, n, 1)
        _, y, new_state = self.recur(self._network_x(xc), state)
        return scatter_cells(self._output(y, xc), cells), new_state

    def load_torch_lstm(self, lstm: nn.LSTM, head: nn.Linear | None = None) -> None:
        """Copy the weights of a unidirectional ``nn.LSTM`` (and optionally a Linear head).

        ``nn.LSTM`` orders the gate blocks i, f, g, o and has two biases; here the blocks are
        i, f, o, g and the biases are summed.
        """
        if lstm.bidirectional or lstm.proj_size or not lstm.bias or lstm.num_layers != len(self.cells):
            raise ValueError(
                f"need a unidirectional nn.LSTM with biases, no projection and {len(self.cells)} layer(s)"
            )
        for layer, cell in enumerate(self.cells):
            w_ih = getattr(lstm, f"weight_ih_l{layer}")
            w_hh = getattr(lstm, f"weight_hh_l{layer}")
            b = getattr(lstm, f"bias_ih_l{layer}") + getattr(lstm, f"bias_hh_l{layer}")
            k = cell.hidden
            order = torch.cat([torch.arange(0, 2 * k), torch.arange(3 * k, 4 * k), torch.arange(2 * k, 3 * k)])
            weight = torch.cat([w_ih, w_hh], dim=1)[order][:, :, None, None]
            cell.load_single_conv_weights(weight, b[order])
        if head is not None:
            with torch.no_grad():
                self.head.weight.copy_(head.weight.reshape(self.head.weight.shape))
                self.head.bias.copy_(head.bias)
