"""Device, precision and determinism: the choices a run makes about the hardware.

* device ``"auto"``: CUDA when ``torch.cuda.is_available()``, else the CPU; ``"cpu"`` and
  ``"cuda"`` force one (``"cuda"`` without a GPU is an error that says so).
* precision ``"auto"``: bf16 autocast on a CUDA device that supports it, else float32;
  never reduced precision on the CPU unless asked for. ``"fp16"`` uses a gradient scaler
  and needs CUDA. Parameters and optimiser state always stay float32 (autocast only
  lowers the precision of the operations that tolerate it).
* :func:`settings`: a context manager that applies the run's thread count and, on the
  CPU, deterministic algorithms, and restores the previous process-wide settings after.
  On the CPU a run is then reproducible for a seed (same machine, same thread count).
  On CUDA it sets ``cudnn.benchmark``: a run's shapes are fixed (batch, window chunk, patch or
  domain), so cuDNN's autotuning is paid once per shape.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from .config import Config, ConfigError

__all__ = ["Hardware", "resolve", "settings"]

_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Hardware:
    """The resolved device and precision of a run."""

    device: torch.device
    precision: str  # fp32 | bf16 | fp16

    @property
    def amp_dtype(self) -> torch.dtype | None:
        return _DTYPES[self.precision]

    def autocast(self):
        """Autocast context for the forward pass (a no-op in fp32)."""
        dtype = self.amp_dtype
        return torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A gradient scaler, enabled for fp16 only (bf16 has float32's exponent range)."""
        return torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")

    def __str__(self) -> str:
        return f"{self.device} ({self.precision})"


def resolve(config: Config, device: str | None = None) -> Hardware:
    """The device and precision of ``config`` (``device`` overrides ``config.device``)."""
    want = device or config.device
    has_cuda = torch.cuda.is_available()
    if want == "auto":
        dev = torch.device("cuda" if has_cuda else "cpu")
    elif want.startswith("cuda"):
        if not has_cuda:
            raise ConfigError("device: 'cuda' was requested but torch.cuda.is_available() is False (no GPU, or a "
                              "CPU-only torch build). Fix: set device to 'auto' or 'cpu'")
        dev = torch.device(want)
    elif want == "cpu":
        dev = torch.device("cpu")
    else:
        raise ConfigError(f"device: unknown value {want!r}; valid values are 'auto', 'cpu', 'cuda'")
    precision = config.precision
    if precision == "auto":
        bf16 = dev.type == "cuda" and torch.cuda.is_bf16_supported()
        precision = "bf16" if bf16 else "fp32"
    if precision == "fp16" and dev.type != "cuda":
        raise ConfigError("precision: 'fp16' needs a CUDA device (CPU kernels for float16 are slow and "
                          "unscaled). Fix: use 'bf16' or 'fp32' on the CPU")
    return Hardware(dev, precision)


@contextlib.contextmanager
def settings(config: Config, hardware: Hardware):
    """Apply thread count and determinism for the duration of a run; restore them afterwards."""
    threads = torch.get_num_threads()
    det = torch.are_deterministic_algorithms_enabled()
    det_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    bench = torch.backends.cudnn.benchmark
    try:
        if hardware.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        if config.deterministic and hardware.device.type == "cpu":
            # warn_only: an op without a deterministic kernel warns instead of failing. Not on
            # CUDA, where it would need CUBLAS_WORKSPACE_CONFIG and slower kernels for little gain
            torch.use_deterministic_algorithms(True, warn_only=True)
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(det, warn_only=det_warn)
        torch.backends.cudnn.benchmark = bench
