"""The one rule for parametrized cases that the default run (`make test`, CI) keeps or leaves to `make test-all`."""
from __future__ import annotations

from typing import Iterable

import pytest


def slow_except(cases: Iterable, quick: Iterable) -> list:
    """``cases`` as parameters, every one not in ``quick`` marked ``slow``."""
    quick = set(quick)
    return [c if c in quick else pytest.param(c, marks=pytest.mark.slow) for c in cases]
