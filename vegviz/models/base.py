"""What every model of the registry shares: the call signature, input checks and the state.

Every model maps ``x`` of shape (batch, time, channels, lat, lon), float32 and free of NaN
(masking missing values is the trainer's job), to ``y`` of shape (batch, time, 1, lat, lon)::

    y, state = model(x)              # zero initial state
    y2, state = model(x2, state)     # carry the state into the next window

``state`` is a list with one ``(h, c)`` pair per recurrent layer, each (batch, hidden,
lat, lon). For truncated back-propagation through time, cut the graph between windows
with :func:`detach_state`.

Per-cell models (class attribute ``per_cell = True``: no spatial context, every cell its
own sequence) also run on a subset of the cells, e.g. the basin mask::

    y, state = model(x, cells=mask)          # mask: bool (lat, lon) on x's device
    y2, state = model(x2, state, cells=mask)  # the same cells for every chunk

Only the ``cells`` are computed: ``y`` is still (batch, time, 1, lat, lon), 0.0 outside
``cells``, and ``state`` is the compact one, (batch, hidden, n, 1) per layer for the ``n``
cells in row-major order (:func:`gather_cells`). Models with spatial context have
``per_cell = False`` and no ``cells`` argument: their output at a cell depends on its
neighbours, so they run on the whole grid.
"""
from __future__ import annotations

import torch
from torch import nn

State = list[tuple[torch.Tensor, torch.Tensor]]

__all__ = ["SequenceModel", "State", "detach_state", "gather_cells", "scatter_cells"]


def detach_state(state: State | None) -> State | None:
    """The same state cut from the autograd graph (truncated BPTT between windows)."""
    if state is None:
        return None
    return [(h.detach(), c.detach()) for h, c in state]


def gather_cells(x: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
    """The ``cells`` of ``x`` (..., lat, lon) in a compact grid (..., n, 1), row-major order.

    ``cells``: bool (lat, lon). Differentiable (the gradient w.r.t. ``x`` is 0 elsewhere).
    """
    index = cells.reshape(-1).nonzero().squeeze(1)
    # advanced indexing: ~5x faster than index_select along the last dim on CPU
    return x.flatten(-2)[..., index].unsqueeze(-1)


def scatter_cells(y: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`gather_cells`: (..., n, 1) back onto the (..., lat, lon) grid of
    ``cells``, 0.0 elsewhere. Differentiable w.r.t. ``y``."""
    index = cells.reshape(-1).nonzero().squeeze(1)
    full = y.new_zeros((*y.shape[:-2], cells.numel()))
    return full.index_copy(-1, index, y.squeeze(-1)).unflatten(-1, cells.shape)


def _all_finite(x: torch.Tensor, cells: torch.Tensor | None = None) -> bool:
    """Whether x (..., lat, lon) is finite (on ``cells`` only, if given).

    A sum is NaN or infinite when any term is, so finite sums per cell prove it at the cost
    of one reduction (~6x cheaper than ``isfinite(x).all()``); only when a sum is not finite
    (a NaN, or an overflow of finite values) does the exact elementwise check decide.
    """
    sums = x.sum(dim=tuple(range(x.dim() - 2)))
    if bool(torch.isfinite(sums if cells is None else sums[cells]).all()):
        return True
    finite = torch.isfinite(x).flatten(0, -3).all(dim=0)
    return bool((finite if cells is None else finite[cells]).all())


class SequenceModel(nn.Module):
    """Base class: input and state checks shared by the models of the registry.

    Subclasses set ``n_inputs`` and ``hidden_sizes`` (one entry per recurrent layer), and
    ``per_cell = True`` when every cell is its own sequence (no spatial context): such a
    model's ``forward`` accepts ``cells`` (module docstring).
    """

    n_inputs: int
    hidden_sizes: tuple[int, ...]
    #: True for models without spatial context, which can run on a subset of the cells
    per_cell: bool = False

    def init_state(self, x: torch.Tensor, cells: torch.Tensor | None = None) -> State:
        """Zero state for a batch shaped like ``x`` (batch, time, channels, lat, lon); the
        compact one (batch, hidden, n, 1) for ``n`` selected ``cells``."""
        batch = x.shape[0]
        nlat, nlon = x.shape[-2:] if cells is None else (int(cells.sum()), 1)
        zeros = lambda k: x.new_zeros(batch, k, nlat, nlon, dtype=torch.float32)  # noqa: E731
        return [(zeros(k), zeros(k)) for k in self.hidden_sizes]

    def check_input(self, x: torch.Tensor, cells: torch.Tensor | None = None) -> None:
        """Raise a ValueError/TypeError that names the problem and the fix.

        With ``cells`` (per-cell models only), ``x`` needs to be finite on those cells only.
        """
        name = type(self).__name__
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} expects a torch.Tensor, got {type(x).__name__}. Fix: torch.as_tensor(x)")
        if x.dim() != 5:
            hint = " Fix: add the batch dimension with x.unsqueeze(0)" if x.dim() == 4 else ""
            raise ValueError(
                f"{name} expects x of shape (batch, time, channels, lat, lon), got {tuple(x.shape)}.{hint}"
            )
        if x.shape[2] != self.n_inputs:
            raise ValueError(
                f"{name} was built for {self.n_inputs} input channels but x has {x.shape[2]} "
                f"(x.shape = {tuple(x.shape)}, channels on dim 2). Fix: build the model with "
                f"n_inputs={x.shape[2]} or pass the channels it was trained on"
            )
        if min(x.shape) == 0:
            raise ValueError(f"{name} got an empty input of shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"{name} expects floating-point x, got {x.dtype}. Fix: x.float()")
        param = next(self.parameters())
        if x.dtype != param.dtype and not torch.is_autocast_enabled(x.device.type):
            raise TypeError(
                f"{name} has {param.dtype} parameters but x is {x.dtype}. Fix: x.to({param.dtype}) "
                "(or run under torch.autocast for mixed precision)"
            )
        if x.device != param.device:
            raise ValueError(f"x is on {x.device} but {name} is on {param.device}. Fix: x.to({str(param.device)!r})")
        if cells is not None:
            self.check_cells(cells, x)
        if not _all_finite(x, cells):
            raise ValueError(
                f"x holds NaN or infinite values{' in the selected cells' if cells is not None else ''}. "
                "The models need complete inputs: fill gaps in the forcings before building the tensor "
                "(the loss masks missing targets, not inputs)"
            )

    def check_cells(self, cells: torch.Tensor, x: torch.Tensor) -> None:
        """Check ``cells`` (the cells to run) against ``x``; called by :meth:`check_input`."""
        name = type(self).__name__
        if not self.per_cell:
            raise TypeError(
                f"{name} has spatial context (its output at a cell depends on the neighbours), so it "
                "cannot run on a subset of the cells. Fix: drop cells (mask the loss instead)"
            )
        fix = "Fix: torch.as_tensor(mask, dtype=torch.bool, device=x.device)"
        if not isinstance(cells, torch.Tensor) or cells.dtype != torch.bool:
            raise TypeError(
                f"{name}: cells must be a bool tensor (lat, lon), got "
                f"{cells.dtype if isinstance(cells, torch.Tensor) else type(cells).__name__}. {fix}"
            )
        if tuple(cells.shape) != tuple(x.shape[-2:]):
            raise ValueError(
                f"{name}: cells has shape {tuple(cells.shape)}, x's grid is {tuple(x.shape[-2:])} (lat, lon). "
                "Fix: pass the mask of x's grid"
            )
        if cells.device != x.device:
            raise ValueError(f"{name}: cells is on {cells.device}, x on {x.device}. Fix: cells.to(x.device)")
        if not bool(cells.any()):
            raise ValueError(f"{name}: cells selects no cell. Fix: pass a mask with at least one True, or None")

    def check_state(self, state: State | None, x: torch.Tensor, cells: torch.Tensor | None = None) -> State:
        """The given state, validated against ``x`` (and ``cells``: then the compact state of
        those cells), or a zero state when ``None``."""
        if state is None:
            return self.init_state(x, cells)
        name = type(self).__name__
        n = len(self.hidden_sizes)
        if not isinstance(state, (list, tuple)) or len(state) != n:
            raise ValueError(
                f"{name} expects state as a list of {n} (h, c) pair(s), one per layer (as returned by "
                f"its forward), got {type(state).__name__} of length {len(state) if hasattr(state, '__len__') else '?'}"
            )
        batch = x.shape[0]
        nlat, nlon = x.shape[-2:]
        ncells = None if cells is None else int(cells.sum())
        grid = (nlat, nlon) if ncells is None else (ncells, 1)
        layout = "(batch, hidden, lat, lon)" if ncells is None else f"(batch, hidden, n, 1) for the n = {ncells} cells"
        for layer, (pair, k) in enumerate(zip(state, self.hidden_sizes)):
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise ValueError(f"{name}: state[{layer}] must be an (h, c) pair")
            for label, t in zip("hc", pair):
                if not isinstance(t, torch.Tensor) or t.device != x.device:
                    raise ValueError(
                        f"{name}: state[{layer}].{label} must be a tensor on {x.device} like x. "
                        "Fix: pass the state returned for the previous window, moved with .to(x.device)"
                    )
                if tuple(t.shape) != (batch, k, *grid):
                    fix = "Fix: pass the state returned for the previous window of the same batch, or None"
                    if t.dim() == 4 and tuple(t.shape[:2]) == (batch, k):  # only the cells differ
                        if ncells is not None:
                            fix = ("Fix: pass the same cells as for the previous chunk (with cells the state is "
                                   "compact; this one comes from other cells or from a run without cells)")
                        elif t.shape[-1] == 1 and nlon != 1:
                            fix = "Fix: this is the compact state of a run with cells: pass the same cells again"
                    raise ValueError(
                        f"{name}: state[{layer}].{label} has shape {tuple(t.shape)}, expected "
                        f"{(batch, k, *grid)} {layout} for x of shape {tuple(x.shape)}. {fix}"
                    )
        return list(state)
