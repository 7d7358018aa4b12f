"""Bokeh server hooks of the directory app `dashboards/` (run by `panel serve dashboards/` only).

When the server starts, Panel's thread pool is started (sessions build their tabs side by side:
``vegviz.dashboards.app.configure_server``), and the app is built once outside any browser session,
so the first page does not wait for the imports (torch, HoloViews) and the per-process caches.
"""
import logging

log = logging.getLogger("vegviz.dashboards")


def on_server_loaded(server_context):
    from vegviz.dashboards.app import configure_server

    log.info("vegviz: %d server threads", configure_server())
    try:
        from vegviz.dashboards.app import warm_up

        log.info("vegviz: app warmed up in %.1f s", warm_up())
    except Exception:  # a failed warm-up only costs time; the sessions report real errors
        log.exception("vegviz: warm-up failed")
