"""The ConvLSTM recurrence over a whole sequence: a fast path and a plain reference path.

Both paths compute the ConvLSTM of Shi et al. (2015, arXiv:1506.04214, eq. 3) *without*
the peephole terms (W_ci * c, W_cf * c, W_co * c), i.e. the form most implementations use
(e.g. Keras ``ConvLSTM2D``)::

    [i, f, o, g] = conv([x_t, h_{t-1}], W) + b        (one convolution, 'same' padding)
    i, f, o = sigmoid(.)   g = tanh(.)
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(c_t)

Weight layout (the common "single convolution" layout): ``W`` has shape
``(4 * hidden, n_in + hidden, k, k)``; output channels are the gate blocks in the order
**i, f, o, g** (input, forget, output, candidate), ``hidden`` channels each; input channels
are ``x_t`` (``n_in``) followed by ``h_{t-1}`` (``hidden``). ``b`` has shape ``(4 * hidden,)``.

:func:`convlstm_scan_reference` is the textbook loop (``torch.cat`` -> conv -> split ->
nonlinearities), differentiated by autograd. :func:`convlstm_scan` computes the same
function with a hand-written backward pass (:class:`_ConvLSTMScan`). Why it is faster,
measured on 2 CPU threads at the study scale (``benchmarks/bench_convlstm.py``):

* **channels-last storage.** Every per-step tensor lives as ``(batch, lat, lon, channel)``.
  oneDNN convolutions on CPU run several times faster on that layout than on NCHW, and
  elementwise ops over all gates become single contiguous passes.
* **no concatenation per step.** ``[x_t, h_{t-1}]`` is written into one reused buffer
  (two small copies); the weight gradient rebuilds it from ``x`` and the output ``hs``,
  which exist anyway, so the concatenated input is never stored.
* **fewer backward convolutions in the loop.** Autograd's per-step convolution backward
  computes the gradient w.r.t. the whole input ``[x_t, h_{t-1}]`` *and* the weights at every
  step. The loop computes the input gradient for ``h_{t-1}`` only (``hidden`` channels;
  ``x`` only when ``x`` needs a gradient, e.g. in a second layer).
* **one sigmoid for all four gates.** ``tanh(a) = 2 sigmoid(2a) - 1``: the candidate rows of
  the weights are doubled once per call (exact in floating point), so a single in-place
  sigmoid over the 4 contiguous gate blocks replaces three sigmoids and one tanh, and
  ``tanh(c)`` is computed the same way. PyTorch's CPU ``tanh`` is about 4x slower per
  element than its ``sigmoid``; the identity costs at most ~2e-7 absolute error.
* **less saved for backward.** Per step it keeps the gate activations (4 * hidden
  channels) and ``c_t`` (hidden) besides the input and the output, against autograd's
  concatenated input (n_in + hidden), four separate activations, ``c_t`` and ``tanh(c_t)``.
* **the head's backward fused into the loop.** With the 1 x 1 output convolution passed
  in, ``dL/dh_t`` gets ``dL/dy_t * w_head`` inside the loop (one op), so the gradient
  w.r.t. all hidden states (``hidden`` channels every day) is never materialised.
* **no fresh memory inside the loop** beyond what is kept for backward: the temporaries of
  each step are written into workspaces allocated once (``out=``, in-place ops). A fresh
  multi-MB tensor costs a page fault per 4 KiB on first touch (~1.7 ms for the 7 MB of
  gates of one step on the test machine), as much as a small convolution.

Measured (batch 8, 90 days, 6 inputs, 16 filters, 63 x 54 grid, 2 threads, float32, a
shared 2-core machine): forward + backward 1.3-1.5 s against 2.4-2.7 s for the
straightforward loop (1.7-1.85x; the three convolutions per step are now ~75% of the
time), and 10.2 MiB of peak memory per day of sequence against 20.7 MiB: a year-long
window needs 3.7 GiB instead of 7.6-8.9 GiB, and a 3 GiB budget fits windows of ~290 days.

Ideas measured and dropped: the input-to-hidden convolution batched over all time steps
(oneDNN is inefficient for 5-6 input channels: it cost more than the ``x`` share of the
fused per-step convolution); weight gradients batched over blocks of steps (no faster
than per step, and it needs a buffer of gate gradients); ``torch.compile`` of the
elementwise cell (about 0.7 ms/step saved on CPU, but 20 s of compilation and a C++
toolchain at run time).

Under ``torch.autocast`` the recurrence runs in float32 (half-precision inputs are cast up:
the sums over hundreds of steps are where low precision hurts); the layers around it keep
autocasting. float64 weights run it in float64 (used by the gradient checks).
The fast path supports first derivatives only (``once_differentiable``); use the reference
path for double backward.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

__all__ = ["convlstm_scan", "convlstm_scan_reference", "N_GATES"]

N_GATES = 4  # i, f, o, g


def convlstm_scan_reference(x, weight, bias, h0, c0, head_weight=None, head_bias=None):
    """Plain ConvLSTM loop, differentiated by autograd (the reference the fast path matches).

    x: (batch, time, n_in, lat, lon); weight, bias: single-convolution layout (module doc);
    h0, c0: (batch, hidden, lat, lon); head_weight, head_bias: an optional 1 x 1 convolution
    to one output channel ((1, hidden, 1, 1) and (1,)). Returns hs (batch, time, hidden, lat,
    lon), h_T, c_T and y (batch, time, 1, lat, lon), or None without a head.
    """
    hidden = h0.shape[1]
    pad = weight.shape[-1] // 2
    h, c = h0, c0
    hs = []
    for t in range(x.shape[1]):
        gates = F.conv2d(torch.cat([x[:, t], h], dim=1), weight, bias, padding=pad)
        i, f, o, g = torch.split(gates, hidden, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        hs.append(h)
    hs = torch.stack(hs, dim=1)
    y = None
    if head_weight is not None:
        y = F.linear(hs.transpose(2, -1), head_weight.reshape(1, hidden), head_bias).transpose(2, -1)
    return hs, h, c, y


def convlstm_scan(x, weight, bias, h0, c0, head_weight=None, head_bias=None):
    """Fast ConvLSTM over a sequence; same arguments, results and math as the reference.

    ``hs`` comes back in the dtype of ``x`` with channels-last strides (a permuted view of
    a contiguous (batch, time, lat, lon, hidden) tensor); ``h_T`` and ``c_T`` in the compute
    dtype: float32, or float64 for float64 weights; ``y`` in the dtype of ``x``. With a head,
    its backward pass is fused into the recurrence: the gradient w.r.t. ``hs`` (hidden
    channels every day) is never materialised when only ``y`` and the state are used.
    When no gradient is needed nothing is kept for a backward pass, so inference over
    decades holds little more than ``hs``.
    """
    dtype = torch.promote_types(weight.dtype, torch.float32)
    if head_weight is not None and head_weight.numel() != h0.shape[1]:
        raise ValueError(f"head_weight must hold one weight per hidden channel, got shape {tuple(head_weight.shape)}")
    args = tuple(None if t is None else t.to(dtype) for t in (x, weight, bias, h0, c0, head_weight, head_bias))
    with torch.autocast(device_type=x.device.type, enabled=False):
        if torch.is_grad_enabled() and any(a is not None and a.requires_grad for a in args):
            hs, y, h, c = _ConvLSTMScan.apply(*args)
        else:
            hs, y, h, c, _ = _forward(*args, keep=False)
    if y is not None:
        y = y.to(x.dtype).permute(0, 1, 4, 2, 3)
    return hs.to(x.dtype).permute(0, 1, 4, 2, 3), h, c, y


def _cl(t):
    """(b, lat, lon, ch) contiguous view of a (b, ch, lat, lon) tensor -> channels-last NCHW view."""
    return t.permute(0, 3, 1, 2)


def _tanh(t, out=None):
    """tanh via 2 sigmoid(2t) - 1 (several times faster than torch.tanh on CPU)."""
    return torch.mul(t, 2, out=out).sigmoid_().mul_(2).sub_(1)


def _scale_candidate(weight, bias, factor):
    """Weights and bias with the candidate (g) rows multiplied by ``factor`` (a power of 2: exact)."""
    hidden = weight.shape[0] // N_GATES
    scale = weight.new_ones(weight.shape[0])
    scale[3 * hidden:] = factor
    w = (weight * scale.view(-1, 1, 1, 1)).contiguous(memory_format=torch.channels_last)
    return w, None if bias is None else bias * scale


def _forward(x, weight, bias, h0, c0, head_weight, head_bias, keep):
    """Run the recurrence (and the head). With ``keep``, also return gates and cells."""
    batch, steps, n_in, nlat, nlon = x.shape
    hidden = h0.shape[1]
    pad = weight.shape[-1] // 2
    w2, b2 = _scale_candidate(weight, bias, 2.0)  # pre-activation 2a for g: tanh(a) = 2σ(2a) - 1

    hs = x.new_empty((batch, steps, nlat, nlon, hidden))
    xh = x.new_empty((batch, nlat, nlon, n_in + hidden))  # [x_t, h_{t-1}], reused every step
    c = c0.contiguous(memory_format=torch.channels_last)
    work = torch.empty_like(c)  # reused: fresh allocations cost page faults
    gates, cells = [], []
    for t in range(steps):
        _fill_slot(xh, x, hs, h0, t)
        p = F.conv2d(_cl(xh), w2, b2, padding=pad)
        p.sigmoid_()
        i, f, o, s = p.split(hidden, dim=1)
        c = torch.mul(f, c).addcmul_(i, s, value=2).sub_(i)  # f c + i (2 s - 1) = f c + i g
        torch.mul(o, _tanh(c, out=work), out=_cl(hs[:, t]))
        if keep:
            gates.append(p)
            cells.append(c)
    h_last = _cl(hs[:, -1]).contiguous(memory_format=torch.channels_last)
    y = None if head_weight is None else F.linear(hs, head_weight.reshape(1, hidden), head_bias)
    return hs, y, h_last, c, (gates, cells)


def _fill_slot(xh, x, hs, h0, t):
    """Write [x_t, h_{t-1}] into the (batch, lat, lon, n_in + hidden) buffer ``xh``."""
    n_in = x.shape[2]
    xh[..., :n_in] = x[:, t].permute(0, 2, 3, 1)
    xh[..., n_in:] = hs[:, t - 1] if t > 0 else h0.permute(0, 2, 3, 1)


class _ConvLSTMScan(torch.autograd.Function):
    """Autograd Function of the fast path: forward via :func:`_forward`, BPTT by hand."""

    @staticmethod
    def forward(ctx, x, weight, bias, h0, c0, head_weight, head_bias):
        hs, y, h, c, (gates, cells) = _forward(x, weight, bias, h0, c0, head_weight, head_bias, keep=True)
        # x and hs (input and output) rebuild [x_t, h_{t-1}] for the weight gradient;
        # intermediates go through save_for_backward too: freed after backward, and a
        # second backward needs retain_graph=True like any other autograd node
        ctx.save_for_backward(x, weight, bias, h0, c0, head_weight, hs, *gates, *cells)
        ctx.set_materialize_grads(False)  # unused outputs: None, not tensors of zeros
        return hs, y, h, c.clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, d_hs, d_y, d_h, d_c):
        x, weight, bias, h0, c0, head_weight, hs, *saved = ctx.saved_tensors
        need_x, need_w, need_b, need_h0, need_c0, need_hw, need_hb = ctx.needs_input_grad
        batch, steps, n_in, nlat, nlon = x.shape
        hidden = h0.shape[1]
        gates, cells = saved[:steps], saved[steps:]
        pad = weight.shape[-1] // 2
        conv_args = ([1, 1], [pad, pad], [1, 1], False, [0, 0], 1)
        # dL/dpre2 of g is 2 (dL/dg) σ'(2a); the loop leaves out that 2 (one op per step
        # fewer), so the input-gradient convolution uses the g rows x4 (2 from the forward
        # doubling, 2 from here) and the weight gradient of the g rows is scaled by 4 below.
        w4, _ = _scale_candidate(weight, None, 4.0)
        w_in = w4 if need_x else w4[:, n_in:].contiguous(memory_format=torch.channels_last)
        # convolution_backward reads only the shape and memory format of the input whose
        # gradient it computes (an expanded tensor would be copied to contiguous every call)
        proto = _cl(x.new_empty((batch, nlat, nlon, w_in.shape[1])))
        d_x = x.new_empty((batch, steps, nlat, nlon, n_in)) if need_x else None
        d_w = torch.zeros_like(weight, memory_format=torch.contiguous_format) if need_w else None
        d_b = torch.zeros_like(bias) if need_b else None

        cl = torch.channels_last
        zeros = torch.zeros_like(c0, memory_format=cl)
        dh_next = zeros if d_h is None else d_h.contiguous(memory_format=cl)
        dc = zeros.clone() if d_c is None else d_c.contiguous(memory_format=cl).clone()
        if d_y is not None:
            w_head = head_weight.reshape(1, hidden, 1, 1)
        # per-step workspaces, reused: fresh allocations cost page faults
        dc_next, tc, dh, tmp, tmp2, g = (torch.empty_like(dc) for _ in range(6))
        dp = torch.empty_like(gates[0])
        di, df, do, dg = dp.split(hidden, dim=1)
        xh = x.new_empty((batch, nlat, nlon, n_in + hidden)) if need_w or need_b else None
        one = dc.new_ones(())
        for t in range(steps - 1, -1, -1):
            i, f, o, s = gates[t].split(hidden, dim=1)
            c_prev = cells[t - 1] if t > 0 else c0
            _tanh(cells[t], out=tc)
            if d_hs is not None:
                torch.add(dh_next, _cl(d_hs[:, t]), out=dh)
            if d_y is not None:  # the head: dL/dh += dL/dy w_head
                torch.addcmul(dh if d_hs is not None else dh_next, _cl(d_y[:, t]), w_head, out=dh)
            if d_hs is None and d_y is None:
                dh.copy_(dh_next)
            torch.mul(s, 2, out=g).sub_(1)          # tanh(a)
            # dc_t = dc_{t+1} f_{t+1} + dh o (1 - tanh(c_t)^2)
            torch.addcmul(one, tc, tc, value=-1, out=tmp2)
            dc.addcmul_(torch.mul(dh, o, out=tmp), tmp2)
            torch.mul(dc, g, out=di)
            torch.mul(dc, c_prev, out=df)
            torch.mul(dh, tc, out=do)
            torch.mul(dc, i, out=dg)                # dL/dg x 1/2 (see above)
            torch.mul(dc, f, out=dc_next)           # dc for step t-1
            # dL/d(pre-activation) = dL/d(gate) s (1 - s), in place
            torch.ops.aten.sigmoid_backward.grad_input(dp, gates[t], grad_input=dp)
            dc, dc_next = dc_next, dc
            d_in = torch.ops.aten.convolution_backward(
                dp, proto, w_in, None, *conv_args, [True, False, False])[0]
            if xh is not None:
                _fill_slot(xh, x, hs, h0, t)
                if pad == 0 and weight.shape[-1] == 1:
                    dpf = dp.permute(0, 2, 3, 1).reshape(-1, dp.shape[1])
                    if need_w:
                        d_w.view(d_w.shape[0], -1).addmm_(dpf.T, xh.reshape(-1, xh.shape[-1]))
                    if need_b:
                        d_b += dpf.sum(0)
                else:
                    _, gw, gb = torch.ops.aten.convolution_backward(
                        dp, _cl(xh), weight, [weight.shape[0]] if need_b else None,
                        *conv_args, [False, need_w, need_b])
                    if need_w:
                        d_w += gw
                    if need_b:
                        d_b += gb
            if need_x:
                _cl(d_x[:, t]).copy_(d_in[:, :n_in])
                dh_next = d_in[:, n_in:]
            else:
                dh_next = d_in

        for d in (d_w, d_b):
            if d is not None:
                d[3 * hidden:] *= 4
        d_hw = d_hb = None
        if d_y is not None and need_hw:
            d_hw = (d_y.reshape(1, -1) @ hs.reshape(-1, hidden)).reshape(head_weight.shape)
        if d_y is not None and need_hb:
            d_hb = d_y.sum().reshape(1)
        return (d_x.permute(0, 1, 4, 2, 3) if need_x else None, d_w, d_b,
                dh_next if need_h0 else None, dc if need_c0 else None, d_hw, d_hb)
