"""Tests of vegviz.models: shapes, gradients, state carry-over, equivalence with plain
implementations, spatial context, the physics variants, determinism and errors.

Small grids (9 x 7) and short sequences keep them fast.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vegviz.models import (
    MODELS,
    ConvLSTM,
    ConvLSTMCell,
    LSTMBaseline,
    PhysicsConvLSTM,
    build_model,
    convlstm_scan,
    convlstm_scan_reference,
    detach_state,
    hparams_of,
    list_models,
    load_single_conv_weights,
)

sys.path.insert(0, str(Path(__file__).parent))
from tolerance import convlstm_scan_roundings, rounding_tolerance  # noqa: E402

B, T, C, NLAT, NLON = 2, 6, 5, 9, 7
IMPLS = ["fast", "reference"]


def inputs(batch=B, steps=T, channels=C, seed=0, **kw):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, steps, channels, NLAT, NLON, generator=g, **kw)


class SingleConvConvLSTM(nn.Module):
    """Reference: the common single-convolution ConvLSTM, written out step by step."""

    def __init__(self, n_in, hidden, k=3):
        super().__init__()
        self.hidden = hidden
        self.conv = nn.Conv2d(n_in + hidden, 4 * hidden, k, padding=k // 2)
        self.head = nn.Conv2d(hidden, 1, 1)

    def forward(self, x, h, c):
        ys = []
        for t in range(x.shape[1]):
            z = self.conv(torch.cat([x[:, t], h], dim=1))
            i = torch.sigmoid(z[:, : self.hidden])
            f = torch.sigmoid(z[:, self.hidden: 2 * self.hidden])
            o = torch.sigmoid(z[:, 2 * self.hidden: 3 * self.hidden])
            g = torch.tanh(z[:, 3 * self.hidden:])
            c = f * c + i * g
            h = o * torch.tanh(c)
            ys.append(self.head(h))
        return torch.stack(ys, dim=1), h, c


# ---------------------------------------------------------------- shapes and registry


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("impl", IMPLS)
def test_every_model_maps_sequences_to_lai_maps_on_the_same_grid(name, impl):
    model = build_model(name, C, impl=impl)
    y, state = model(inputs())
    assert y.shape == (B, T, 1, NLAT, NLON)
    assert y.dtype == torch.float32
    assert len(state) == 1
    for h, c in state:
        assert h.shape == c.shape == (B, 16, NLAT, NLON)


@pytest.mark.parametrize("kernel_size", [1, 3, 5])
def test_same_padding_keeps_the_grid_for_any_odd_kernel_and_depth(kernel_size):
    model = ConvLSTM(C, filters=[4, 3], kernel_size=kernel_size)
    y, state = model(inputs())
    assert y.shape == (B, T, 1, NLAT, NLON)
    assert [tuple(h.shape) for h, _ in state] == [(B, 4, NLAT, NLON), (B, 3, NLAT, NLON)]


def test_study_defaults():
    model = build_model("convlstm", 5)
    assert len(model.cells) == 1
    cell = model.cells[0]
    assert (cell.hidden, cell.kernel_size) == (16, 3)
    assert cell.conv.weight.shape == (64, 5 + 16, 3, 3)
    assert hparams_of("lstm")["hidden"] == 16
    assert set(MODELS) == {"convlstm", "convlstm_physics", "lstm"} == set(list_models())


def test_registry_errors_name_the_choices():
    with pytest.raises(ValueError, match=r"unknown model 'convlsmt'.*convlstm.*convlstm_physics.*lstm"):
        build_model("convlsmt", 5)
    with pytest.raises(ValueError, match=r"no hyperparameter.*'hidden'.*filters"):
        build_model("convlstm", 5, hidden=8)
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        build_model("convlstm", 5, kernel_size=4)
    with pytest.raises(ValueError, match="mode must be one of"):
        build_model("convlstm_physics", 5, mode="add")
    with pytest.raises(ValueError, match="process_channel=7"):
        build_model("convlstm_physics", 5, process_channel=7)
    with pytest.raises(ValueError, match="filters must be a positive integer"):
        build_model("convlstm", 5, filters=0)


def test_bad_inputs_give_clear_errors():
    model = ConvLSTM(C, filters=4)
    with pytest.raises(ValueError, match=r"unsqueeze\(0\)"):
        model(inputs()[0])
    with pytest.raises(ValueError, match="built for 5 input channels but x has 4"):
        model(inputs(channels=4))
    x = inputs()
    x[0, 2, 1, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        model(x)
    with pytest.raises(TypeError, match=r"x.to\(torch.float32\)"):
        model(inputs().double())
    _, state = model(inputs())
    with pytest.raises(ValueError, match=r"state\[0\].h has shape"):
        model(inputs(batch=3), state)
    with pytest.raises(ValueError, match="list of 1"):
        model(inputs(), state * 2)


# ---------------------------------------------------------------- gradients


@pytest.mark.parametrize("name", list_models())
def test_every_parameter_gets_a_finite_nonzero_gradient(name):
    torch.manual_seed(0)
    model = build_model(name, C, layers=2)
    y, _ = model(inputs())
    F.mse_loss(y, torch.zeros_like(y)).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("with_head", [False, True])
def test_fast_backward_passes_gradcheck_in_float64(with_head):
    torch.manual_seed(0)
    n_in, hidden = 2, 3
    f64 = {"dtype": torch.float64, "requires_grad": True}
    x = torch.randn(1, 3, n_in, 4, 5, **f64)
    w = (0.5 * torch.randn(4 * hidden, n_in + hidden, 3, 3, dtype=torch.float64)).requires_grad_()
    b = torch.randn(4 * hidden, **f64)
    h0, c0 = torch.randn(1, hidden, 4, 5, **f64), torch.randn(1, hidden, 4, 5, **f64)
    head = (torch.randn(1, hidden, 1, 1, **f64), torch.randn(1, **f64)) if with_head else ()

    def f(*args):
        return tuple(out for out in convlstm_scan(*args) if out is not None)

    assert torch.autograd.gradcheck(f, (x, w, b, h0, c0, *head), eps=1e-6, atol=1e-6)


def test_fast_backward_combines_gradients_from_every_output():
    torch.manual_seed(11)
    hidden = 3
    x = inputs()
    w, b = 0.3 * torch.randn(4 * hidden, C + hidden, 3, 3), torch.randn(4 * hidden)
    hw, hb = torch.randn(1, hidden, 1, 1), torch.randn(1)
    h0, c0 = torch.randn(B, hidden, NLAT, NLON), torch.randn(B, hidden, NLAT, NLON)
    weights = [torch.randn(shape) for shape in [(B, T, hidden, NLAT, NLON), (B, hidden, NLAT, NLON),
                                                (B, hidden, NLAT, NLON), (B, T, 1, NLAT, NLON)]]
    grads = []
    for scan in (convlstm_scan, convlstm_scan_reference):
        args = [t.clone().requires_grad_() for t in (x, w, b, h0, c0, hw, hb)]
        outs = scan(*args)
        sum((o * k).sum() for o, k in zip(outs, weights)).backward()
        grads.append([a.grad for a in args])
    for name, a, r in zip(["x", "w", "b", "h0", "c0", "head_w", "head_b"], *grads):
        torch.testing.assert_close(a, r, atol=1e-4, rtol=1e-4, msg=name)


@pytest.mark.parametrize("impl", IMPLS)
def test_single_conv_weights_reproduce_the_reference_outputs_and_gradients(impl):
    torch.manual_seed(1)
    hidden = 6
    ref = SingleConvConvLSTM(C, hidden)
    model = ConvLSTM(C, filters=hidden, impl=impl)
    load_single_conv_weights(model, ref.conv.weight.detach(), ref.conv.bias.detach())
    model.head.load_state_dict(ref.head.state_dict())

    h0 = torch.randn(B, hidden, NLAT, NLON)
    c0 = torch.randn(B, hidden, NLAT, NLON)
    target = torch.randn(B, T, 1, NLAT, NLON)
    x_ref, x_ours = inputs(requires_grad=True), inputs(requires_grad=True)

    y_ref, h_ref, c_ref = ref(x_ref, h0, c0)
    y, [(h, c)] = model(x_ours, [(h0, c0)])
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h, h_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(c, c_ref, atol=1e-5, rtol=1e-5)

    # a loss that also uses the final state exercises every gradient path
    (F.mse_loss(y_ref, target) + c_ref.mean()).backward()
    (F.mse_loss(y, target) + c.mean()).backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad, atol=1e-5, rtol=1e-4)
    conv = model.cells[0].conv
    for ours, theirs in [(conv.weight, ref.conv.weight), (conv.bias, ref.conv.bias),
                         (model.head.weight, ref.head.weight), (model.head.bias, ref.head.bias)]:
        scale = theirs.grad.abs().max()
        torch.testing.assert_close(ours.grad / scale, theirs.grad / scale, atol=1e-5, rtol=1e-4)


def test_cell_step_is_the_reference_math():
    torch.manual_seed(2)
    ref = SingleConvConvLSTM(C, 4)
    cell = ConvLSTMCell(C, 4)
    load_single_conv_weights(cell, ref.conv.weight.detach(), ref.conv.bias.detach())
    x, h, c = inputs()[:, 0], torch.randn(B, 4, NLAT, NLON), torch.randn(B, 4, NLAT, NLON)
    _, h_ref, c_ref = ref(x[:, None], h, c)
    h1, c1 = cell(x, (h, c))
    torch.testing.assert_close(h1, h_ref)
    torch.testing.assert_close(c1, c_ref)


def test_single_conv_loading_checks_shapes():
    model = ConvLSTM(C, filters=4)
    with pytest.raises(ValueError, match=r"needs \(16, 9, 3, 3\)"):
        load_single_conv_weights(model, torch.zeros(16, 8, 3, 3), torch.zeros(16))
    with pytest.raises(IndexError, match="1 layer"):
        load_single_conv_weights(model, torch.zeros(16, 9, 3, 3), layer=1)


def test_fast_and_reference_paths_agree_for_stacked_layers():
    torch.manual_seed(3)
    fast = ConvLSTM(C, filters=[5, 4], kernel_size=3, impl="fast")
    ref = ConvLSTM(C, filters=[5, 4], kernel_size=3, impl="reference")
    ref.load_state_dict(fast.state_dict())
    ys = []
    for model in (fast, ref):
        y, state = model(inputs())
        (y.square().mean() + sum(h.mean() + c.mean() for h, c in state)).backward()
        ys.append(y)
    torch.testing.assert_close(ys[0], ys[1], atol=1e-5, rtol=1e-5)
    for (name, p), q in zip(fast.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad, q.grad, atol=1e-5, rtol=1e-4, msg=name)


def test_inference_without_grad_equals_training_forward():
    model = ConvLSTM(C, filters=4)
    y_train, _ = model(inputs())
    with torch.no_grad():
        y_eval, _ = model(inputs())
    torch.testing.assert_close(y_eval, y_train.detach())


def test_autocast_runs_and_stays_close_to_float32():
    torch.manual_seed(4)
    model = ConvLSTM(C, filters=4)
    y32, _ = model(inputs())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, state = model(inputs())
    y.float().square().mean().backward()
    assert torch.isfinite(y.float()).all()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    assert state[0][0].dtype == torch.float32  # the recurrence itself stays float32
    torch.testing.assert_close(y.float(), y32.detach(), atol=0.05, rtol=0.05)


# ---------------------------------------------------------------- state carry-over


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("impl", IMPLS)
def test_two_windows_with_carried_state_equal_one_long_window(name, impl):
    torch.manual_seed(5)
    model = build_model(name, C, layers=2, impl=impl)
    x = inputs(steps=8)
    y_all, state_all = model(x)
    y1, state = model(x[:, :3])
    y2, state = model(x[:, 3:], detach_state(state))
    torch.testing.assert_close(torch.cat([y1, y2], dim=1), y_all, atol=1e-6, rtol=1e-5)
    for (h, c), (h_all, c_all) in zip(state, state_all):
        torch.testing.assert_close(h, h_all, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(c, c_all, atol=1e-6, rtol=1e-5)


def test_detached_state_cuts_the_graph_between_windows():
    model = ConvLSTM(C, filters=4)
    _, state = model(inputs())
    cut = detach_state(state)
    assert all(not h.requires_grad and not c.requires_grad for h, c in cut)
    assert all(h.requires_grad for h, _ in state)
    assert detach_state(None) is None


# ---------------------------------------------------------------- spatial context


def _response_to_one_cell(model, lat=4, lon=3):
    x = inputs()
    y0, _ = model(x)
    x[:, :, :, lat, lon] += 3.0
    y1, _ = model(x)
    return (y1 - y0).abs().detach()[:, :, 0]  # (batch, time, lat, lon)


def test_lstm_has_no_spatial_context():
    torch.manual_seed(6)
    diff = _response_to_one_cell(LSTMBaseline(C, hidden=8, layers=2))
    assert diff[:, :, 4, 3].min() > 0  # the perturbed cell responds at every step
    diff[:, :, 4, 3] = 0
    assert diff.max() == 0  # and no other cell does


def test_convlstm_output_at_a_neighbour_responds():
    torch.manual_seed(6)
    diff = _response_to_one_cell(ConvLSTM(C, filters=8))
    assert diff[:, :, 4, 3].min() > 0
    assert diff[:, :, 5, 3].max() > 1e-4  # direct neighbour: within the 3 x 3 kernel
    # one 3 x 3 layer spreads information by one cell per day: 2 cells away needs 2 days
    assert diff[:, 1:, 6, 3].max() > 0
    assert diff[:, 0, 6, 3].max() == 0


def test_lstm_baseline_is_torch_lstm_over_cells():
    torch.manual_seed(7)
    lstm, head = nn.LSTM(C, 8, num_layers=2), nn.Linear(8, 1)
    model = LSTMBaseline(C, hidden=8, layers=2)
    model.load_torch_lstm(lstm, head)
    x = inputs()
    seqs = x.permute(1, 0, 3, 4, 2).reshape(T, B * NLAT * NLON, C)  # every cell its own sequence
    out, _ = lstm(seqs)
    y_ref = head(out).reshape(T, B, NLAT, NLON, 1).permute(1, 0, 4, 2, 3)
    y, _ = model(x)
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------- physics-encoded variant


def test_residual_with_zero_head_returns_lai_process():
    model = PhysicsConvLSTM(C, process_channel=2, mode="residual")
    x = inputs()
    y, _ = model(x)
    assert torch.equal(y, x[:, :, 2:3])  # the head starts at zero: the process model itself
    assert model.cells[0].n_inputs == C - 1  # the network does not see lai_process


def test_residual_network_ignores_lai_process_but_channel_mode_uses_it():
    torch.manual_seed(8)
    x = inputs()
    x2 = x.clone()
    x2[:, :, -1] += 1.0  # change lai_process (last channel)
    residual = PhysicsConvLSTM(C, mode="residual")
    nn.init.normal_(residual.head.weight)
    correction = [residual(v)[0] - v[:, :, -1:] for v in (x, x2)]
    torch.testing.assert_close(correction[0], correction[1])
    for mode in ("channel", "both"):
        model = PhysicsConvLSTM(C, mode=mode)
        nn.init.normal_(model.head.weight)
        y, y2 = model(x)[0], model(x2)[0]
        delta = (y2 - y) - (1.0 if mode == "both" else 0.0)
        assert delta.abs().max() > 1e-4, mode  # the network sees lai_process as an input


def test_physics_channel_mode_is_the_convlstm_on_all_channels():
    torch.manual_seed(9)
    physics = build_model("convlstm_physics", C)
    plain = ConvLSTM(C)
    plain.load_state_dict(physics.state_dict())
    x = inputs()
    torch.testing.assert_close(physics(x)[0], plain(x)[0])


# ---------------------------------------------------------------- determinism


@pytest.mark.parametrize("name", list_models())
def test_same_seed_same_model_and_outputs(name):
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        model = build_model(name, C)
        y, _ = model(inputs())
        y.mean().backward()
        outs.append((y.detach(), [p.grad.clone() for p in model.parameters()]))
    assert torch.equal(outs[0][0], outs[1][0])
    assert all(torch.equal(a, b) for a, b in zip(outs[0][1], outs[1][1]))
    torch.manual_seed(124)
    other, _ = build_model(name, C)(inputs())
    assert not torch.equal(other, outs[0][0])


def test_forget_gate_bias_starts_at_one():
    cell = ConvLSTMCell(C, 4)
    assert torch.equal(cell.conv.bias[4:8], torch.ones(4))
    assert torch.equal(cell.conv.bias[:4], torch.zeros(4))
    assert torch.equal(cell.conv.bias[8:], torch.zeros(8))


def test_reference_scan_is_exported_and_equal_to_fast_scan():
    torch.manual_seed(10)
    x = inputs()
    w, b = 0.3 * torch.randn(16, C + 4, 3, 3), torch.randn(16)
    h0 = c0 = torch.zeros(B, 4, NLAT, NLON)
    hs, h, c, y = convlstm_scan(x, w, b, h0, c0)
    assert y is None
    f64 = [t.double() for t in (x, w, b, h0, c0)]
    exact = convlstm_scan_reference(*f64)[:3]
    # Tolerances from the operation count (tests/tolerance.py): T steps of an 81-term
    # convolution plus ~10 elementwise roundings, 552 roundings on |values| <= max(1, |c|).
    # Over 300 random seeds the differences stayed below 2% of these bounds. Exactness is
    # the point, so both paths run in float64 too (bound ~2e-13: a 0.1% error in tanh(c),
    # hs stored in float16 or a g bias not doubled change the outputs by 9e-4, 2e-4, 0.9).
    n = convlstm_scan_roundings(C, 4, 3, T)
    scale = max(1.0, max(float(t.abs().max()) for t in exact))
    for a, r in zip(convlstm_scan(*f64)[:3], exact):
        torch.testing.assert_close(a, r, atol=rounding_tolerance(n, torch.float64, scale), rtol=0)
    # the float32 fast path (what training runs) against the float64 result: one float32 rounding
    # chain (~6e-5 here; this test saw 1.34e-6 between the float32 paths on an AMD EPYC)
    for a, r in zip((hs, h, c), exact):
        torch.testing.assert_close(a.double(), r, atol=rounding_tolerance(n, torch.float32, scale, evaluations=1),
                                   rtol=0)


# ---------------------------------------------------------------- per-cell models on a subset of the cells


def basin_cells(seed=12):
    """An irregular (NLAT, NLON) mask of about half the cells, edges included."""
    g = torch.Generator().manual_seed(seed)
    cells = torch.rand(NLAT, NLON, generator=g) < 0.5
    cells[0, 0] = cells[-1, -1] = True
    return cells


def per_cell_lstm64(model, xs, targets, cells):
    """The model's weights as a plain per-cell LSTM in float64 on ``cells`` only, over the chunks ``xs``
    (state carried, detached), each with the loss of :func:`run_chunks`.

    Returns y (batch, time, n), the final state [(h, c) (batch, n, hidden)] and, for every parameter,
    the sum over the terms of each gradient entry of their absolute values (what rounding errors scale
    with): a weight entry of layer l sums dL/dz_t[b, cell, gate] * [x_t, h_{t-1}][b, cell, input] over
    every day, batch and cell.
    """
    params = {name: p.detach().double().requires_grad_() for name, p in model.named_parameters()}
    abs_terms = {name: torch.zeros_like(p) for name, p in params.items()}
    count = B * int(cells.sum()) * sum(x.shape[1] for x in xs)
    state = [None] * len(model.cells)
    ys = []
    for x, target in zip(xs, targets):
        inp = x.double()[..., cells].permute(0, 3, 1, 2)  # (batch, n, time, channels)
        saved = []
        for layer, cell in enumerate(model.cells):
            k = cell.hidden
            w = params[f"cells.{layer}.conv.weight"].reshape(4 * k, -1)
            b = params[f"cells.{layer}.conv.bias"]
            h, c = state[layer] or (inp.new_zeros(*inp.shape[:2], k), inp.new_zeros(*inp.shape[:2], k))
            hs = []
            for t in range(inp.shape[2]):
                xh = torch.cat([inp[:, :, t], h], dim=-1)
                z = xh @ w.T + b
                z.retain_grad()
                i, f, o, g = z.split(k, dim=-1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
                hs.append(h)
                saved.append((layer, z, xh.detach()))
            state[layer] = (h, c)
            inp = torch.stack(hs, dim=2)  # (batch, n, time, hidden): the next layer's input
        y = inp @ params["head.weight"].reshape(-1) + params["head.bias"]
        y.retain_grad()
        ((y - target.double()[:, :, 0][..., cells].transpose(1, 2)).square().sum() / count).backward()
        for layer, z, xh in saved:
            dz = z.grad.abs().flatten(0, 1)
            abs_terms[f"cells.{layer}.conv.weight"] += (dz.T @ xh.abs().flatten(0, 1)).reshape(dz.shape[1], -1, 1, 1)
            abs_terms[f"cells.{layer}.conv.bias"] += dz.sum(0)
        abs_terms["head.weight"] += (y.grad.abs()[..., None] * inp.detach().abs()).sum((0, 1, 2)).reshape(1, -1, 1, 1)
        abs_terms["head.bias"] += y.grad.abs().sum().reshape(1)
        state = [(h.detach(), c.detach()) for h, c in state]
        ys.append(y.detach().transpose(1, 2))
    return torch.cat(ys, dim=1), state, abs_terms


def run_chunks(model, xs, targets, cells, use_cells):
    """Forward + backward of the mean squared error over ``cells`` chunk by chunk (truncated BPTT, as the
    trainer does), the model on the full grid or on ``cells`` only: y, final state, parameter gradients."""
    model.zero_grad(set_to_none=True)
    count = B * int(cells.sum()) * sum(x.shape[1] for x in xs)
    state, ys = None, []
    for x, target in zip(xs, targets):
        y, state = model(x, state, cells=cells) if use_cells else model(x, state)
        ((y - target).square() * cells).sum().div(count).backward()
        state = detach_state(state)
        ys.append(y.detach())
    return torch.cat(ys, dim=1), state, {name: p.grad.clone() for name, p in model.named_parameters()}


def per_cell_roundings(model, steps):
    """Roundings along the chain of one term of a parameter gradient (tests/tolerance.py counts them):
    forward through every layer (each a 1 x 1 ConvLSTM), the head and the loss derivative, and the
    backward recurrence (per step the (4 hidden)-term dot product for dL/dh_{t-1} and ~10 elementwise
    roundings), over all ``steps`` of the chunks (the carried state carries earlier errors)."""
    forward = sum(convlstm_scan_roundings(cell.n_inputs, cell.hidden, 1, steps) for cell in model.cells)
    backward = sum(steps * (4 * cell.hidden + 11) for cell in model.cells)
    return forward, forward + model.head.in_channels + 1 + 3 + backward


def compare_cells_with_full_grid(model, xs, targets, cells):
    """max |difference| / tolerance of outputs, final state and gradients, cells-only against full grid.

    Tolerances from float32 rounding (tests/tolerance.py), two evaluations that may round differently
    (another spatial size picks another oneDNN kernel and another summation order; AVX2 and AVX-512
    kernels differ too):

    * outputs and state: the recurrence's count of roundings along one output's chain, each at most u
      (2^-24) times the magnitude of the values, max(1, |c|) for h and c (|h| <= 1), times
      sum |head weights| + |head bias| for y;
    * a parameter gradient entry is a sum of N = batch x cells x days terms (over the chunks), each
      computed through a chain of R roundings: |difference| <= 2 (N + R) u / (1 - (N + R) u) x
      sum |terms| (Higham's gamma_n bound for a sum in any order, the terms' own errors modelled
      as relative), sum |terms| from a float64 per-cell LSTM (:func:`per_cell_lstm64`), which is also
      checked to be the same function (its outputs against the float32 ones).
    """
    y_full, state_full, g_full = run_chunks(model, xs, targets, cells, use_cells=False)
    y_cells, state_cells, g_cells = run_chunks(model, xs, targets, cells, use_cells=True)
    y64, state64, abs_terms = per_cell_lstm64(model, xs, targets, cells)
    steps = sum(x.shape[1] for x in xs)
    n_forward, n_chain = per_cell_roundings(model, steps)
    scale = max(1.0, max(float(c.abs().max()) for _, c in state64))
    head = float(model.head.weight.detach().abs().sum() + model.head.bias.detach().abs().sum())
    n_y = n_forward + model.head.in_channels + 1
    ratios = {}

    assert torch.equal(y_cells[..., ~cells], torch.zeros_like(y_cells[..., ~cells]))  # 0.0 outside, exactly
    y_tol = rounding_tolerance(n_y, torch.float32, scale * head)
    ratios["y"] = float((y_cells - y_full)[..., cells].abs().max()) / y_tol
    y64_tol = rounding_tolerance(n_y, torch.float32, scale * head, evaluations=1)  # one float32 result vs exact
    ratios["y vs float64"] = float((y_cells[:, :, 0][..., cells].double() - y64).abs().max()) / y64_tol
    state_tol = rounding_tolerance(n_forward, torch.float32, scale)
    for layer, ((h, c), (h_full, c_full), k) in enumerate(zip(state_cells, state_full, model.hidden_sizes)):
        n = int(cells.sum())
        assert h.shape == c.shape == (B, k, n, 1)
        for label, compact, full in (("h", h, h_full), ("c", c, c_full)):
            # the compact state holds the cells in row-major order
            ratios[f"state[{layer}].{label}"] = float((compact[..., 0] - full[..., cells]).abs().max()) / state_tol
    n_terms = B * int(cells.sum()) * steps
    for name, g in g_full.items():
        assert torch.isfinite(g_cells[name]).all() and g.abs().max() > 0, name
        tol = rounding_tolerance(n_terms + n_chain, torch.float32, 1.0) * abs_terms[name].float()
        ratios[name] = float(((g_cells[name] - g) / tol).abs().max())
    return ratios


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("layers", [1, 2])
def test_cells_only_run_is_the_full_grid_run_on_those_cells(impl, layers):
    # Validation of the tolerances (compare_cells_with_full_grid): over 300 seeds per case (other
    # weights, inputs and cells; 1 thread, and 100 seeds on 2 threads) on an AMD EPYC (AVX2) the
    # largest |difference| / tolerance was 0.009 (0.0017 for the gradients); computing one cell
    # fewer than the loss scores moves some gradient by more than 80 tolerances (20 seeds).
    torch.manual_seed(13)
    model = LSTMBaseline(C, hidden=6, layers=layers, impl=impl)
    nn.init.normal_(model.head.weight)
    x = inputs(steps=7, seed=1)
    target = torch.randn(B, 7, 1, NLAT, NLON, generator=torch.Generator().manual_seed(2))
    xs, targets = (x[:, :3], x[:, 3:]), (target[:, :3], target[:, 3:])  # two chunks, the state carried
    ratios = compare_cells_with_full_grid(model, xs, targets, basin_cells())
    worst = max(ratios, key=ratios.get)
    assert ratios[worst] <= 1, f"{worst}: |difference| is {ratios[worst]:.3g} x the rounding tolerance ({ratios})"


def test_cells_only_output_state_and_inputs():
    torch.manual_seed(14)
    model = LSTMBaseline(C, hidden=4, layers=2)
    cells = basin_cells()
    n = int(cells.sum())
    x = inputs()
    y, state = model(x, cells=cells)
    assert y.shape == (B, T, 1, NLAT, NLON) and bool((y[..., ~cells] == 0).all())
    assert [(tuple(h.shape), tuple(c.shape)) for h, c in state] == [((B, 4, n, 1), (B, 4, n, 1))] * 2
    # inputs outside the cells are never read: NaN there is fine, and they get no gradient
    x2 = x.clone()
    x2[..., ~cells] = float("nan")
    x2.requires_grad_()
    y2, _ = model(x2, cells=cells)
    assert torch.equal(y2, y)
    y2.sum().backward()
    assert bool((x2.grad[..., ~cells] == 0).all()) and x2.grad[..., cells].abs().max() > 0
    # but inside they are checked as before
    x2 = x.clone()
    x2[0, 1, 2, cells.nonzero()[3, 0], cells.nonzero()[3, 1]] = float("inf")
    with pytest.raises(ValueError, match="NaN or infinite values in the selected cells"):
        model(x2, cells=cells)
    # a single cell and every cell work too
    one = torch.zeros(NLAT, NLON, dtype=torch.bool)
    one[4, 3] = True
    torch.testing.assert_close(model(x, cells=one)[0][..., 4, 3], model(x)[0][..., 4, 3], rtol=0, atol=1e-6)
    all_cells = torch.ones(NLAT, NLON, dtype=torch.bool)
    torch.testing.assert_close(model(x, cells=all_cells)[0], model(x)[0], rtol=0, atol=1e-6)


def test_only_per_cell_models_take_cells():
    assert LSTMBaseline.per_cell is True
    assert [name for name, cls in MODELS.items() if cls.per_cell] == ["lstm"]
    cells = basin_cells()
    for model in (ConvLSTM(C, filters=4), PhysicsConvLSTM(C, filters=4)):
        assert model.per_cell is False
        with pytest.raises(TypeError, match="cells"):
            model(inputs(), cells=cells)
        with pytest.raises(TypeError, match="spatial context.*Fix: drop cells"):
            model.check_input(inputs(), cells)


def test_cells_and_state_errors_name_the_fix():
    model = LSTMBaseline(C, hidden=4)
    cells = basin_cells()
    x = inputs()
    _, compact = model(x, cells=cells)
    _, full = model(x)
    with pytest.raises(ValueError, match=r"state\[0\].h has shape .*n = \d+ cells.*same cells as for the previous"):
        model(x, full, cells=cells)
    other = cells.clone()
    other[cells.nonzero()[0, 0], cells.nonzero()[0, 1]] = False
    with pytest.raises(ValueError, match="same cells as for the previous chunk"):
        model(x, compact, cells=other)
    with pytest.raises(ValueError, match="compact state of a run with cells: pass the same cells again"):
        model(x, compact)
    with pytest.raises(ValueError, match=r"state\[0\].h has shape.*same batch"):
        model(inputs(batch=3), compact, cells=cells)
    with pytest.raises(TypeError, match=r"bool tensor.*torch.as_tensor\(mask, dtype=torch.bool"):
        model(x, cells=cells.float())
    with pytest.raises(TypeError, match="bool tensor"):
        model(x, cells=cells.numpy())
    with pytest.raises(ValueError, match=r"cells has shape \(7, 9\), x's grid is \(9, 7\)"):
        model(x, cells=cells.T)
    with pytest.raises(ValueError, match="selects no cell"):
        model(x, cells=torch.zeros_like(cells))


def test_finite_check_survives_an_overflowing_sum():
    model = LSTMBaseline(C, hidden=4)
    x = torch.full((B, T, C, NLAT, NLON), 3e38)  # finite values whose sums overflow to inf
    model.check_input(x)
    model.check_input(x, basin_cells())
    x[0, 0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        model.check_input(x)
