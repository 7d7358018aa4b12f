"""What every model of the registry shares: the call signature, input checks and the state.

Every model maps ``x`` of shape (batch, time, channels, lat, lon), float32 and free of NaN
(masking missing values is the trainer's job), to ``y`` of shape (batch, time, 1, lat, lon)::

    y, state = model(x)              # zero initial state
    y2, state = model(x2, state)     # carry the state into the next window

``state`` is a list with one ``(h, c)`` pair per recurrent layer, each (batch, hidden,
lat, lon). For truncated back-propagation through time, cut the graph between windows
with :func:`detach_state`.
"""
from __future__ import annotations

import torch
from torch import nn

State = list[tuple[torch.Tensor, torch.Tensor]]

__all__ = ["SequenceModel", "State", "detach_state"]


def detach_state(state: State | None) -> State | None:
    """The same state cut from the autograd graph (truncated BPTT between windows)."""
    if state is None:
        return None
    return [(h.detach(), c.detach()) for h, c in state]


class SequenceModel(nn.Module):
    """Base class: input and state checks shared by the models of the registry.

    Subclasses set ``n_inputs`` and ``hidden_sizes`` (one entry per recurrent layer).
    """

    n_inputs: int
    hidden_sizes: tuple[int, ...]

    def init_state(self, x: torch.Tensor) -> State:
        """Zero state for a batch shaped like ``x`` (batch, time, channels, lat, lon)."""
        batch, _, _, nlat, nlon = x.shape
        zeros = lambda k: x.new_zeros(batch, k, nlat, nlon, dtype=torch.float32)  # noqa: E731
        return [(zeros(k), zeros(k)) for k in self.hidden_sizes]

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a ValueError/TypeError that names the problem and the fix."""
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
        if not bool(torch.isfinite(x).all()):
            raise ValueError(
                "x holds NaN or infinite values. The models need complete inputs: fill gaps in the "
                f"forcings before building the tensor (the loss masks missing targets, not inputs)"
            )

    def check_state(self, state: State | None, x: torch.Tensor) -> State:
        """The given state, validated against ``x``, or a zero state when ``None``."""
        if state is None:
            return self.init_state(x)
        name = type(self).__name__
        n = len(self.hidden_sizes)
        if not isinstance(state, (list, tuple)) or len(state) != n:
            raise ValueError(
                f"{name} expects state as a list of {n} (h, c) pair(s), one per layer (as returned by "
                f"its forward), got {type(state).__name__} of length {len(state) if hasattr(state, '__len__') else '?'}"
            )
        batch, _, _, nlat, nlon = x.shape
        for layer, (pair, k) in enumerate(zip(state, self.hidden_sizes)):
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise ValueError(f"{name}: state[{layer}] must be an (h, c) pair")
            for label, t in zip("hc", pair):
                if not isinstance(t, torch.Tensor) or t.device != x.device:
                    raise ValueError(
                        f"{name}: state[{layer}].{label} must be a tensor on {x.device} like x. "
                        "Fix: pass the state returned for the previous window, moved with .to(x.device)"
                    )
                if tuple(t.shape) != (batch, k, nlat, nlon):
                    raise ValueError(
                        f"{name}: state[{layer}].{label} has shape {tuple(t.shape)}, expected "
                        f"{(batch, k, nlat, nlon)} (batch, hidden, lat, lon) for x of shape {tuple(x.shape)}. "
                        "Fix: pass the state returned for the previous window of the same batch, or None"
                    )
        return list(state)
