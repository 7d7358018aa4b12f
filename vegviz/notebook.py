"""Set up a Jupyter notebook to draw vegviz's plots and widgets, with or without internet access.

Call :func:`setup` in the first cell of a notebook, before ``import hvplot.xarray``::

    import vegviz.notebook
    vegviz.notebook.setup("tabulator")

By default Bokeh, Panel and HoloViews load their JavaScript from public CDNs. On HPC login
nodes, air-gapped clusters or a laptop offline, the notebook then runs every cell and shows
no plot (the browser console says "Unable to run Panel code because Bokeh or Panel library
is missing"). In a Jupyter kernel, :func:`setup` embeds the resources in the notebook's
output instead (``inline``), which works the same in JupyterLab, the classic notebook,
VS Code and Binder, online or not. It must come first because every HoloViews extension
call (``import hvplot.xarray`` makes one) publishes its resources at once: ``setup`` makes
those later calls inline too, so importing hvplot afterwards is safe.

It also registers HoloViews' Bokeh backend and display hooks (``hv.extension("bokeh")``):
without them a HoloViews object returned by a cell is printed as text
(``:Overlay .Area...``) instead of drawn.

Outside a kernel (``panel serve notebook.ipynb``, a script) it only loads the Panel
extensions: a Panel server serves the resources itself.
"""
from __future__ import annotations

import warnings

__all__ = ["in_kernel", "setup"]


def in_kernel() -> bool:
    """Whether this code runs in a Jupyter kernel (JupyterLab, classic notebook, VS Code, Binder)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return getattr(get_ipython(), "kernel", None) is not None


def setup(*extensions: str, **params) -> None:
    """Load Panel (with ``extensions``, e.g. ``"tabulator"``), Bokeh and HoloViews for this notebook.

    ``params`` go to ``pn.extension`` (e.g. ``sizing_mode``). In a kernel the JavaScript and CSS
    are inline, so plots draw without internet access; call it before importing ``hvplot.xarray``.
    """
    import holoviews as hv
    import panel as pn

    from . import bokeh_setup  # noqa: F401  (frame-sized plots: no W-1005 warnings)

    if in_kernel():
        if not pn.config.inline and (getattr(hv.extension, "_loaded", False) or pn.extension._loaded):
            warnings.warn(
                "Bokeh/Panel resources were already loaded from the internet (CDN) in this kernel, by "
                "`import hvplot.xarray`, `hv.extension` or `pn.extension` before vegviz.notebook.setup(): "
                "plots will not draw without internet access. Fix: call vegviz.notebook.setup() in the "
                "notebook's first cell, before those, then restart the kernel and run all cells.",
                stacklevel=2)
        pn.config.inline = True
        # hv.extension is HoloViews' notebook extension here; hvplot's extension (called by
        # `import hvplot.xarray`) subclasses it and so inherits this default
        hv.extension.inline = True
    hv.extension("bokeh", logo=False)
    pn.extension(*extensions, **params)
