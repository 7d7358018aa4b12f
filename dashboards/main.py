"""The combined vegviz app: `panel serve dashboards/` (from the repository root) serves this file.

A folder given to `panel serve` is a Bokeh "directory app": its `main.py` is the app, at
http://127.0.0.1:5006/dashboards. The notebooks next to it serve one dashboard each:
`panel serve dashboards/maps.ipynb`. See README.md here.
"""
import panel as pn

from vegviz.dashboards import App

pn.extension("tabulator")

App().servable()
