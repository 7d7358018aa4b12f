"""Masked losses: only observed target values inside the mask, after the burn-in, count.

The satellite target is NaN except on composite dates, and cells outside the basin mask
never count. NaN must not reach the gradient: ``where(valid, (pred - target)**2, 0)``
still back-propagates ``0 * nan = nan`` through the unselected branch, so the target is
filled *before* the difference is taken. A batch without a single observed value gives a
loss of exactly zero with zero (not NaN) gradients.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["masked_loss", "masked_error_sum", "valid_mask"]

#: threshold between the quadratic and linear parts of the Huber loss, in target std units
HUBER_DELTA = 1.0


def valid_mask(target: torch.Tensor, mask: torch.Tensor | None = None, burn_in: int = 0) -> torch.Tensor:
    """Boolean (batch, time, lat, lon): finite target, inside ``mask`` (lat, lon), not in the burn-in."""
    valid = torch.isfinite(target)
    if mask is not None:
        valid = valid & mask.to(device=target.device, dtype=torch.bool)
    if burn_in:
        valid[:, :burn_in] = False
    return valid


def masked_error_sum(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor,
                     kind: str = "mse") -> torch.Tensor:
    """Sum of the elementwise errors over ``valid`` points (a 0-d tensor, float32).

    ``pred`` may carry a channel axis of size 1 at dim 2 (the models' (batch, time, 1, lat,
    lon) output); ``target`` and ``valid`` are (batch, time, lat, lon).
    """
    if pred.dim() == target.dim() + 1:
        pred = pred.squeeze(2)
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} does not match target shape {tuple(target.shape)}")
    pred = pred.float()
    # fill unobserved targets with the (detached) prediction: zero error and zero gradient there
    filled = torch.where(valid, target.float(), pred.detach())
    diff = pred - filled
    if kind == "mse":
        err = diff * diff
    elif kind == "mae":
        err = diff.abs()
    elif kind == "huber":
        err = F.huber_loss(pred, filled, reduction="none", delta=HUBER_DELTA)
    else:
        raise ValueError(f"loss: unknown kind {kind!r}; choose 'mse', 'mae' or 'huber'")
    return torch.where(valid, err, torch.zeros((), dtype=err.dtype, device=err.device)).sum()


def masked_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
                burn_in: int = 0, kind: str = "mse") -> torch.Tensor:
    """Mean error over observed, in-mask, post-burn-in points; 0 (with zero gradient) if there are none.

    pred: (batch, time[, 1], lat, lon); target: (batch, time, lat, lon) with NaN where
    not observed; mask: (lat, lon) 0/1 or bool; burn_in: leading time steps not scored.
    """
    valid = valid_mask(target, mask, burn_in)
    total = masked_error_sum(pred, target, valid, kind)
    return total / valid.sum().clamp(min=1)
