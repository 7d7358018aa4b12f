"""Where vegviz keeps its data cache and its runs: two folders, found without heavy imports.

The dashboards need these folders on every page (to list results and to check user
paths); they live here, importing only the standard library, so that finding them does
not pull in torch or the virtual-basin code. :func:`vegviz.data.virtual.store.cache_dir`
and :func:`vegviz.training.runs_root` are these functions.
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATA_ENV", "RUNS_ENV", "cache_dir", "runs_root", "user_data_dir"]

DATA_ENV = "VEGVIZ_DATA_DIR"
RUNS_ENV = "VEGVIZ_RUNS_DIR"


def user_data_dir() -> Path:
    """The user data directory of vegviz (platform dependent, e.g. ``~/.local/share/vegviz``)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("vegviz"))


def cache_dir(data_dir=None) -> Path:
    """Where cached data lives: ``data_dir``, else $VEGVIZ_DATA_DIR, else the user data directory."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    return user_data_dir()


def runs_root() -> Path:
    """Where runs live: $VEGVIZ_RUNS_DIR, else the user data directory's ``runs`` folder."""
    env = os.environ.get(RUNS_ENV)
    if env:
        return Path(env).expanduser()
    return user_data_dir() / "runs"
