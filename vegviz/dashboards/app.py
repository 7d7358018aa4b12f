"""The combined app: Training, LAI maps, Skill, Time series, Compare and Scenarios in one page with a short header.

    App()                 # inline in a notebook (tabs under a header line)
    App().servable()      # under ``panel serve``: the same in an offline page template

``panel serve dashboards/`` from the repository root serves it (``dashboards/main.py``);
``vegviz serve`` does the same bound to 127.0.0.1.

The three result browsers show the same result: choosing one in any tab opens it in
the others, so the header can say which data set is shown and whether it is synthetic.
A run finished in the Training tab is listed in the other tabs at once (their
``refresh()`` is called from the training dashboard's ``on_finished``).

Security: plain ``panel serve`` listens on every interface, and this app trains models
and reads the runs directory. So a served session whose browser is not on this machine
(the request's remote address is not loopback) gets only an explanation, and nothing
else is built, unless the environment variable ``VEGVIZ_ALLOW_REMOTE=1`` says otherwise.
"""
from __future__ import annotations

import ipaddress
import logging
import os
import time
from functools import partial
from typing import Callable

import pandas as pd
import panel as pn
import param

log = logging.getLogger(__name__)

__all__ = ["ALLOW_REMOTE_ENV", "App", "SERVER_THREADS_ENV", "TABS", "configure_server", "local_only", "remote_refusal",
           "server_threads", "warm_up"]

ALLOW_REMOTE_ENV = "VEGVIZ_ALLOW_REMOTE"
TABS = ("Training", "LAI maps", "Skill", "Time series", "Compare", "Scenarios")
#: header colour of the page template (the study's vegetation green)
ACCENT = "#2f6b3a"


# ----------------------------------------------------------------------------- the remote-client guard

def _session_context():
    """The Bokeh session context of the page being built; None in a notebook or a script."""
    doc = pn.state.curdoc
    return getattr(doc, "session_context", None) if doc is not None else None


def _is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone ("fe80::1%eth0")
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)  # "::ffff:127.0.0.1"
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def remote_refusal() -> str | None:
    """Why the current served session must be refused (its browser is on another machine), or None.

    None outside a server (notebook, script), for loopback clients, and whenever
    ``VEGVIZ_ALLOW_REMOTE=1`` is set. A session whose client address cannot be read is
    refused too: the guard fails closed.
    """
    if os.environ.get(ALLOW_REMOTE_ENV, "").strip() == "1":
        return None
    ctx = _session_context()
    if ctx is None:
        return None
    request = getattr(ctx, "request", None)
    address = getattr(request, "remote_ip", None) if request is not None else None
    if address and _is_loopback(str(address)):
        return None
    who = f"from {address}" if address else "whose client address is unknown"
    return (f"This vegviz server refuses a browser {who}: it trains models and reads the runs directory, so by "
            "default it answers only browsers on the machine it runs on. Fix: open it on that machine "
            "(e.g. through an SSH tunnel: `ssh -L 5006:127.0.0.1:5006 host`, then http://127.0.0.1:5006), "
            f"or, on a trusted network only, start the server with {ALLOW_REMOTE_ENV}=1 and "
            "`vegviz serve --address 0.0.0.0 --allow-origin host:port`.")


def _refusal_alert(reason: str) -> pn.pane.Alert:
    return pn.pane.Alert(f"### Access refused\n{reason}", alert_type="danger", sizing_mode="stretch_width")


def local_only(factory: Callable, *args, **kwargs):
    """``factory(*args, **kwargs)``; in a session refused by :func:`remote_refusal`, only an Alert.

    For the one-dashboard notebooks in ``dashboards/``: ``local_only(LaiMaps).servable()``.
    The factory is not called for a refused session, so nothing reads any data for it.
    """
    reason = remote_refusal()
    if reason is not None:
        log.warning("refused a served session: %s", reason)
        return _refusal_alert(reason)
    return factory(*args, **kwargs)


# ----------------------------------------------------------------------------- the app

class App(pn.viewable.Viewer):
    """Training, LAI maps, Skill, Time series, Compare and Scenarios as tabs, under a header naming the data shown.

    A tab's component is built when the tab is first shown (or its attribute first read:
    ``training_dashboard``, ``maps``, ``skill``, ``timeseries``, ``scenarios``), so the first page
    costs one dashboard, not six. The Scenarios tab starts on the shown result as its source.
    ``training`` passes settings to the :class:`TrainingDashboard` (e.g. ``{"max_epochs": 3, "extra": {"num_threads": 1}}``); without a
    ``data`` setting it trains on the small virtual basin of the shown result's domain.
    In a refused session (``refused`` holds the reason) nothing is built.
    """

    title = param.String(default="", doc="page title; empty: 'vegviz · daily LAI · ' and the shown data's domain")
    tab = param.Selector(default=None, objects=list(TABS), allow_None=True,
                         doc="tab shown (default: LAI maps when a result exists, else Training)")
    result = param.Selector(default=None, objects=[], allow_None=True, check_on_set=False,
                            doc="result shown by the LAI maps, Skill and Time series tabs (they follow each other)")
    training = param.Dict(default={}, precedence=-1, doc="settings for the TrainingDashboard")

    def __init__(self, **params):
        super().__init__(**params)
        self._components: dict[str, pn.viewable.Viewer] = {}
        self._header_cache: dict[str, str] = {}
        self._domain_cache: dict[str, object] = {}
        self._syncing = False
        self.header = pn.pane.Markdown("", margin=(0, 10), sizing_mode="stretch_width")
        self.refused = remote_refusal()
        if self.refused is not None:  # build nothing that reads data or can train
            log.warning("refused a served session: %s", self.refused)
            self._layout = _refusal_alert(self.refused)
            return
        names = self._list()
        if self.result not in names:
            self.result = names[0] if names else None
        self._holders = {name: pn.Column(sizing_mode="stretch_width") for name in TABS}
        self.tabs = pn.Tabs(*self._holders.items(), dynamic=True, sizing_mode="stretch_width")
        if self.tab is None:
            self.tab = "LAI maps" if self.result is not None else "Training"
        self._show_tab(defer=True, initial=True)
        self.tabs.param.watch(self._from_tabs, "active")
        self.param.watch(lambda _e: self._show_tab(defer=True), "tab")
        self.param.watch(self._on_result, "result")
        self._update_header()
        self._layout = pn.Column(self.header, self.tabs, sizing_mode="stretch_width")

    # --------------------------------------------------------------- components, built on first use
    def component(self, tab: str):
        """The component of ``tab`` (one of :data:`TABS`), built now if it was not yet."""
        if tab not in TABS:
            raise ValueError(f"unknown tab {tab!r}; choose one of {', '.join(TABS)}")
        if self.refused is not None:
            raise PermissionError(self.refused)
        if tab not in self._components:
            try:
                comp = self._build(tab)
            except Exception as e:  # shown in the tab; the other tabs stay usable, showing it again retries
                log.exception("the %s tab could not be built", tab)
                self._holders[tab].objects = [pn.pane.Alert(
                    f"The {tab} tab could not be built: {type(e).__name__}: {e}. Fix the cause named here, then "
                    "show the tab again.", alert_type="danger", sizing_mode="stretch_width")]
                raise
            self._components[tab] = comp
            self._holders[tab].objects = [comp]
        return self._components[tab]

    def _build(self, tab: str):
        if tab == "Training":
            from .training import TrainingDashboard

            settings = dict(self.training)
            domain = self.domain
            if "data" not in settings and domain is not None:  # train on the shown domain's small basin
                from ..domains import virtual_entry
                from . import sources

                small = virtual_entry(domain, "small")
                try:
                    if small in sources.data_choices():
                        settings["data"] = small
                except Exception as e:  # no catalog: the dashboard's own default, and it says why
                    log.warning("no data choices: %s", e)
            comp = TrainingDashboard(**settings)
            comp.on_finished(self._on_trained)
            return comp
        if tab == "Compare":
            from .compare import Compare

            return Compare(**({"a": self.result} if self.result is not None else {}))
        if tab == "Scenarios":
            from .scenarios import ScenariosDashboard

            return ScenariosDashboard(**({"source": self.result} if self.result is not None else {}))
        from .maps import LaiMaps
        from .skill import Skill
        from .timeseries import TimeSeries

        cls = {"LAI maps": LaiMaps, "Skill": Skill, "Time series": TimeSeries}[tab]
        comp = cls(**({"result": self.result} if self.result is not None else {}))
        comp.param.watch(self._from_viewer, "result")
        return comp

    @property
    def training_dashboard(self):
        return self.component("Training")

    @property
    def maps(self):
        return self.component("LAI maps")

    @property
    def skill(self):
        return self.component("Skill")

    @property
    def timeseries(self):
        return self.component("Time series")

    @property
    def compare(self):
        return self.component("Compare")

    @property
    def scenarios(self):
        return self.component("Scenarios")

    @property
    def viewers(self) -> list:
        """The result browsers built so far (of LAI maps, Skill, Time series)."""
        return [c for t, c in self._components.items() if t not in ("Training", "Compare", "Scenarios")]

    def _show_tab(self, defer: bool = False, initial: bool = False):
        i = TABS.index(self.tab or TABS[0])
        tab = TABS[i]
        doc = pn.state.curdoc
        if defer and tab not in self._components and _session_context() is not None:
            # building a tab takes seconds (data, first plots): the browser gets a spinner now and the
            # tab a moment later, instead of a blank page until the build returns
            self._holders[tab].objects = [pn.Row(pn.indicators.LoadingSpinner(value=True, size=24),
                                                 pn.pane.Markdown(f"Building the **{tab}** tab..."))]
            build = partial(self._build_shown, tab)
            if initial:  # the page itself: sent at once; the tab once the browser has it, off the event loop
                pn.state.onload(build)  # (in Panel's thread pool when the server has one: server_threads)
            elif pn.config.nthreads:  # the server's pool (configure_server, or panel serve --num-threads)
                pn.state.execute(build, schedule="thread")
            else:
                doc.add_timeout_callback(build, 300)  # ms: time to draw the spinner
        else:
            self._build_shown(tab)
        if self.tabs.active != i:
            self.tabs.active = i

    def _build_shown(self, tab: str) -> None:
        try:
            self.component(tab)
        except Exception:  # already shown in the tab by component()
            pass

    def _from_tabs(self, event):
        self.tab = TABS[event.new]

    # --------------------------------------------------------------- keeping the tabs together
    def _from_viewer(self, event):
        """A result chosen in one tab becomes the app's result (and so the other tabs')."""
        if not self._syncing and event.new is not None:
            self.result = event.new

    def _on_result(self, event):
        self._syncing = True
        try:
            for viewer in self.viewers:
                if viewer.result != event.new and event.new is not None:
                    viewer.result = event.new
        finally:
            self._syncing = False
        self._update_header()

    def _list(self) -> list[str]:
        from . import sources

        try:
            results = sources.list_results()
        except Exception as e:  # the tabs say what is wrong; the header must not break the page
            log.warning("could not list the results: %s", e)
            results = {}
        self.param.result.objects = sources.result_options(results)
        return list(results)

    def _on_trained(self, run=None):
        """A training run finished: list it in every result browser (the shown result stays)."""
        self.refresh()

    def refresh(self) -> list[str]:
        """Re-list the runs directory here and in every result browser built; return the result names."""
        self._header_cache.clear()  # a result re-trained under the same name may describe other data
        self._domain_cache.clear()
        names = self._list()
        errors = []
        for viewer in self.viewers + [c for t, c in self._components.items() if t in ("Compare", "Scenarios")]:
            try:
                viewer.refresh()
            except Exception as e:  # one broken tab must not keep the others from listing the run
                log.exception("refresh of %s failed", type(viewer).__name__)
                errors.append(f"{type(viewer).__name__}: {type(e).__name__}: {e}")
        if self.result is None and names:
            self.result = names[0]  # the first result ever: show it
        self._update_header()
        if errors:
            raise RuntimeError("; ".join(errors))  # the training dashboard shows it as a warning
        return names

    # --------------------------------------------------------------- header
    @property
    def domain(self):
        """The :class:`~vegviz.domains.Domain` of the shown result's data; None without one."""
        if self.result is None or self.refused is not None:
            return None
        if self.result not in self._domain_cache:
            from . import sources

            try:
                self._domain_cache[self.result] = sources.domain_of(
                    sources.observations_for(sources.open_result(self.result)))
            except Exception as e:
                log.warning("domain: could not open %s: %s", self.result, e)
                self._domain_cache[self.result] = None
        return self._domain_cache[self.result]

    def page_title(self) -> str:
        """``title``, else 'vegviz · daily LAI · <domain title>' of the shown result."""
        if self.title:
            return self.title
        d = self.domain
        return f"vegviz · daily LAI · {d.title}" if d is not None else "vegviz · daily LAI"

    def header_text(self) -> str:
        """One short line: the data set shown, whether it is synthetic, and the result."""
        if self.refused is not None:
            return "**Access refused**"
        if self.result is None:
            return "**No results yet**: train a model in the **Training** tab"
        if self.result not in self._header_cache:
            self._header_cache[self.result] = self._describe(self.result)
        return self._header_cache[self.result]

    def _describe(self, name: str) -> str:
        from ..evaluation.scoring import is_synthetic
        from . import sources

        try:
            pred = sources.open_result(name)
            obs = sources.observations_for(pred)
        except Exception as e:
            log.warning("header: could not open %s: %s", name, e)
            return f"Result **{name}** (could not be opened)"
        t = obs["time"].values
        span = f"{pd.Timestamp(t[0]):%Y}–{pd.Timestamp(t[-1]):%Y}"
        kind = "**SYNTHETIC** data" if is_synthetic(obs) or is_synthetic(pred) else "real observations"
        domain = sources.domain_of(obs)
        self._domain_cache[name] = domain
        return f"**{domain.title}** · Data set **{pred.attrs.get('data', '?')}** ({span}) · {kind} · result **{name}**"

    def _update_header(self, *_events):
        self.header.object = self.header_text()

    # --------------------------------------------------------------- display
    def __panel__(self):
        return self._layout

    def template(self):
        """The app in an offline page template (its CSS and JS come from the Panel server)."""
        if self.refused is not None:
            return self._layout
        # Bootstrap: every CSS/JS file it needs is bundled with Panel (the Fast templates fetch a web font)
        tmpl = pn.template.BootstrapTemplate(title=self.page_title(), header_background=ACCENT, collapsed_sidebar=True,
                                             sidebar_width=300)
        # the header line on the page's top bar; in a notebook it sits above the tabs
        tmpl.header.append(pn.pane.Markdown(self.header.param.object, styles={"color": "white"},
                                            margin=(0, 10), sizing_mode="stretch_width"))
        tmpl.main.append(self.tabs)
        tmpl.sidebar.append(pn.pane.Markdown(_ABOUT))
        return tmpl

    def servable(self, title: str | None = None, location: bool = True, area: str = "main",
                 target: str | None = None):
        """Serve the app: in a server session the page template, elsewhere (a notebook) the plain layout."""
        if _session_context() is not None:
            return self.template().servable(title=title or self.page_title(), location=location)
        return super().servable(title=title, location=location, area=area, target=target)


#: JavaScript, true once a page of this app shows its LAI map with data (the plots are canvases, not text):
#: what the browser soak test and benchmarks/bench_server_sessions.py wait for
MAP_DRAWN_JS = """() => {
  if (!window.Bokeh || !Bokeh.documents) return false;
  for (const doc of Bokeh.documents) for (const m of doc.all_models)
    if (m.type == 'ColumnDataSource' && m.data.image && m.data.image.length) return true;
  return false;
}"""

#: environment variable: threads of the served app's pool (Panel's ``config.nthreads``); 0: none
SERVER_THREADS_ENV = "VEGVIZ_SERVER_THREADS"
#: Why a pool, and why more threads than cores: without one, Bokeh builds each session's page and
#: answers its widgets on the one event loop, so five browsers opening the app at once were served
#: one after another (the fifth waited 4x as long as the first). In the pool each session's tab is
#: built in a thread of its own: Python threads share the cores (the GIL), so the sessions advance
#: together, and reading data releases the GIL. One thread per session opened at once.
SERVER_THREADS = 8


def server_threads() -> int:
    """The threads of the served app's pool: ``$VEGVIZ_SERVER_THREADS`` (0: none), default :data:`SERVER_THREADS`."""
    text = os.environ.get(SERVER_THREADS_ENV, "").strip()
    try:
        n = int(text) if text else SERVER_THREADS
    except ValueError:
        raise ValueError(f"{SERVER_THREADS_ENV}={text!r} is not a number of threads. Fix: set a whole number "
                         f"(0: no pool, every session on the event loop), or unset it for {SERVER_THREADS}") from None
    if n < 0:
        raise ValueError(f"{SERVER_THREADS_ENV}={n} is negative. Fix: 0 or more threads")
    return n


def configure_server() -> int:
    """Start Panel's thread pool for a served app (unless ``--num-threads`` did); return its size (0: none)."""
    if pn.config.nthreads is None:
        n = server_threads()
        if n:
            pn.config.nthreads = n
    return pn.config.nthreads or 0


def warm_up() -> float:
    """Build the app once outside any session (imports, basemap and data caches); return the seconds.

    ``dashboards/app_hooks.py`` calls it when ``panel serve dashboards/`` starts, so the
    first browser does not wait for torch, HoloViews and the caches (several seconds).
    """
    t0 = time.perf_counter()
    App().__panel__().get_root()
    return time.perf_counter() - t0


_ABOUT = """\
### vegviz
Daily Leaf Area Index (LAI) of a basin on the NLDAS-2 grid (the study's Upper Colorado
River Basin, or any domain: `vegviz domain list`) simulated from daily climate with
ConvLSTM networks, the physics-encoded variant and an LSTM baseline. The header names
the shown data's domain; maps, extents and state lines follow it.

* **Training**: train a model in the background and watch it learn.
* **LAI maps**: satellite, simulated and difference maps per day.
* **Skill**: NSE / KGE / RMSE per cell and per vegetation type.
* **Time series**: the models against satellite LAI.
* **Scenarios**: project the models on a climate scenario (ΔT, precipitation factor) and
  map the change of LAI per model, the virtual basin's true change, the ensemble spread.

Data sets labelled *synthetic* come from the virtual basin: generated, not observed.
"""
