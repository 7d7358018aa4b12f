"""The CUDA path: the same training on a GPU as on the CPU. Skipped without a GPU (CI has none).

``benchmarks/bench_gpu.py`` runs these with the GPU measurements, on any GPU machine.
"""
from __future__ import annotations

import numpy as np
import pytest

from test_training import learnable_dataset, tiny_config
from vegviz.training import Trainer, predict

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def data():
    return learnable_dataset(n=8)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_training_on_the_gpu_learns_like_on_the_cpu(data, tmp_path, precision):
    runs = {}
    for device in ("cpu", "cuda"):
        cfg = tiny_config(device=device, precision=precision if device == "cuda" else "fp32", max_epochs=3)
        t = Trainer(cfg, data, tmp_path / device, progress=False)
        runs[device] = t.fit()
        assert str(t.device).startswith(device)
    cpu, gpu = runs["cpu"]["val_loss"].to_numpy(), runs["cuda"]["val_loss"].to_numpy()
    assert np.isfinite(gpu).all() and gpu[-1] < gpu[0]
    # different kernels (TF32, cuDNN algorithms, bf16 gates) change the path, not what is learned
    assert abs(gpu[-1] - cpu[-1]) < 0.25 * cpu[0]


def test_tiled_prediction_on_the_gpu_matches_the_cpu(data, tmp_path):
    cfg = tiny_config(device="cpu", max_epochs=1)
    t = Trainer(cfg, data, tmp_path / "run", progress=False)
    t.fit()
    cpu = predict(t.model, data, cfg, t.stats, tile=4, halo=2)["convlstm"].values
    gpu = predict(t.model, data, cfg, t.stats, device="cuda", tile=4, halo=2)["convlstm"].values
    both = np.isfinite(cpu)
    assert (both == np.isfinite(gpu)).all()
    # TF32 convolutions round to 10 mantissa bits: ~1e-3 relative per step, not amplified by the gates
    assert np.abs(cpu[both] - gpu[both]).max() < 0.02 * np.abs(cpu[both]).max()
