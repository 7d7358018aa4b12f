"""Reproducible random numbers and spatially correlated random fields for the virtual basin.

Every random quantity is drawn from its own stream, keyed by the seed, a stream name
and (where it changes every year) the year. A year's weather is therefore a pure
function of (seed, year): it does not depend on the period being generated, so the
small variant shares its weather with the full one and a build can start anywhere.

Spatially correlated fields are made by spectral synthesis: a stationary Gaussian
random field with a Gaussian correlation function C(r) = exp(-r^2 / (2 l^2)) is a sum of
Fourier modes whose amplitudes follow the square root of its power spectrum,
S(k) ~ exp(-k^2 l^2 / 2). With correlation lengths of tens to hundreds of km on a grid
of ~12 km cells only a few hundred low-wavenumber modes carry any variance, so the
synthesis is two small matrix products per day instead of an FFT of a padded grid.
The period of the modes exceeds the domain by four correlation lengths, so opposite
edges of the grid are not spuriously correlated.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

KM_PER_DEG = 111.2  # length of one degree of latitude (mean Earth radius 6371 km)


def stream(seed: int, name: str, *keys: int) -> np.random.Generator:
    """An independent generator for stream ``name`` (and e.g. a year) under ``seed``.

    Stream names are turned into integers with CRC-32, which (unlike ``hash``) is the
    same in every Python process.
    """
    ss = np.random.SeedSequence(entropy=int(seed), spawn_key=(zlib.crc32(name.encode()), *map(int, keys)))
    return np.random.Generator(np.random.PCG64(ss))


def check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}. Fix: pass e.g. seed=42")
    return int(seed)


@dataclass(frozen=True)
class SpectralField:
    """Unit-variance Gaussian random fields on a lat/lon grid, correlation length ``length_km``."""

    lat: np.ndarray
    lon: np.ndarray
    length_km: float
    _basis: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        y = (np.asarray(self.lat, float) - self.lat[0]) * KM_PER_DEG
        x = (np.asarray(self.lon, float) - self.lon[0]) * KM_PER_DEG * np.cos(np.deg2rad(np.mean(self.lat)))
        ell = float(self.length_km)
        if not ell > 0:
            raise ValueError(f"length_km must be positive, got {self.length_km}")
        cy, sy, ky = self._modes(y, ell)
        cx, sx, kx = self._modes(x, ell)
        # Amplitude = sqrt of the spectrum of C(r); modes beyond k l = 3.5 carry < 1e-5 of it.
        amp = np.exp(-(ky[:, None] ** 2 + kx[None, :] ** 2) * ell**2 / 4.0)
        amp[np.hypot(ky[:, None], kx[None, :]) * ell > 3.5] = 0.0
        amp /= np.sqrt(np.sum(amp**2))  # each mode adds amp^2 to the variance (see synthesize)
        # Complex products written as real ones: (A + iB)(C + iS) = [A|B] @ [[C, S], [-S, C]].
        mx = np.block([[cx.T, sx.T], [-sx.T, cx.T]]).astype(np.float32)  # (2 mx, 2 nlon)
        my = np.concatenate([cy, -sy], axis=1).astype(np.float32)  # (nlat, 2 my): Re of (Cy + iSy) W
        object.__setattr__(self, "_basis", (my, mx, amp.astype(np.float32)))

    @staticmethod
    def _modes(coord_km: np.ndarray, ell: float):
        period = (coord_km[-1] - coord_km[0]) + 4.0 * ell
        m = int(np.ceil(3.5 * period / (2 * np.pi * ell)))
        k = 2 * np.pi * np.arange(-m, m + 1) / period
        phase = coord_km[:, None] * k[None, :]
        return np.cos(phase), np.sin(phase), k

    @property
    def n_modes(self) -> tuple[int, int]:
        return self._basis[2].shape

    def innovations(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` days of white-noise mode coefficients (n, my, 2, mx): real and imaginary parts N(0, 1)."""
        my, mx = self.n_modes
        return rng.standard_normal((n, my, 2, mx), dtype=np.float32)

    def synthesize(self, coef: np.ndarray) -> np.ndarray:
        """Fields (n, nlat, nlon) float32 from mode coefficients (n, my, 2, mx).

        Re(sum amp Z exp(i k.x)) with Re Z, Im Z ~ N(0, 1) has variance sum amp^2 = 1.
        """
        basis_y, basis_x, amp = self._basis
        n, my, _, mx = coef.shape
        w = (coef * amp[None, :, None, :]).reshape(n * my, 2 * mx) @ basis_x  # rows [Re | Im] over lon
        w = w.reshape(n, my, 2, -1).transpose(0, 2, 1, 3).reshape(n, 2 * my, -1)
        return np.matmul(basis_y, w)


def ar1(innov: np.ndarray, phi: float) -> np.ndarray:
    """AR(1) along axis 0 with unit stationary variance: x_t = phi x_{t-1} + sqrt(1-phi^2) e_t.

    Starts from x = 0, so callers prepend enough earlier innovations (a year is plenty for
    phi <= 0.9: 0.9^365 ~ 2e-17) for the result to be stationary.
    """
    if not 0 <= phi < 1:
        raise ValueError(f"AR(1) coefficient must be in [0, 1), got {phi}")
    from scipy.signal import lfilter  # here: scipy.signal costs ~0.6 s of import, and opening a store needs none

    return lfilter([np.sqrt(1 - phi**2)], [1.0, -phi], innov, axis=0).astype(innov.dtype, copy=False)


def ar1_year_field(field_: SpectralField, seed: int, name: str, year: int, days: int,
                   days_before: int, phi: float) -> np.ndarray:
    """A year of an AR(1)-in-time, spatially correlated field (days, nlat, nlon), unit variance.

    The innovations of each year come from the stream (``name``, year); the state on
    1 January is reached by filtering the previous year's innovations first, so the
    field is continuous across the new year and still a pure function of the year.
    """
    prev = field_.innovations(stream(seed, name, year - 1), days_before)
    this = field_.innovations(stream(seed, name, year), days)
    coef = ar1(np.concatenate([prev, this]), phi)[days_before:]
    return field_.synthesize(coef)


def annual_index(seed: int, name: str, year: int, phi: float, memory: int = 60) -> float:
    """Year ``year`` of a unit-variance AR(1) series of yearly values (e.g. a drought index).

    Computed as the moving-average form sum_k phi^k sqrt(1-phi^2) e_{year-k} over ``memory``
    years, each e_y from its own stream, so any year can be had without the others.
    """
    k = np.arange(memory)
    e = np.array([stream(seed, name, year - j).standard_normal() for j in k])
    return float(np.sqrt(1 - phi**2) * np.sum(phi**k * e))
