"""The dashboards behind JupyterLab: a ``jupyter-server-proxy`` server named ``vegviz``.

pyproject.toml registers :func:`setup_dashboards` under the entry-point group
``jupyter_serverproxy_servers``. When ``jupyter-server-proxy`` is installed (Binder),
JupyterLab's launcher gets a "vegviz dashboards" tile, and the first request to
``<base_url>vegviz/`` starts ``panel serve dashboards/`` on a free port and proxies it:

    https://<binder host>/user/<id>/vegviz/dashboards    the combined app

How the pieces fit: the proxy fills in ``{port}`` and ``{base_url}`` (the Jupyter server's
URL prefix, e.g. ``/user/abc/``). With ``absolute_url`` the proxy forwards the full path,
so Panel serves under ``--prefix {base_url}vegviz`` and every link and the websocket URL
of the page carry that prefix. Panel listens on 127.0.0.1 only; the browser's requests
arrive through the Jupyter server (which authenticates them), so the app sees a loopback
client and its remote-client guard lets them in without ``VEGVIZ_ALLOW_REMOTE``.
``--allow-websocket-origin=*`` is needed because the page's origin is the Binder host, not
127.0.0.1; only the authenticated proxy can reach the port.
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["NAME", "dashboards_dir", "setup_dashboards"]

NAME = "vegviz"


def dashboards_dir() -> Path:
    """The repository's ``dashboards/`` folder (vegviz is installed with ``pip install -e .``)."""
    return Path(__file__).resolve().parent.parent / "dashboards"


def setup_dashboards() -> dict:
    """The ``jupyter-server-proxy`` configuration of the vegviz dashboards (see the module docstring)."""
    import sys

    folder = dashboards_dir()
    return {
        "command": [sys.executable, "-m", "panel", "serve", str(folder), "--address", "127.0.0.1",
                    "--port", "{port}", "--allow-websocket-origin", "*", "--prefix", "{base_url}" + NAME],
        "absolute_url": True,
        # the app is warmed up on start (dashboards/app_hooks.py: torch, HoloViews, caches)
        "timeout": 180,
        "launcher_entry": {"title": "vegviz dashboards", "path_info": f"{NAME}/dashboards"},
        "new_browser_tab": True,
    }
