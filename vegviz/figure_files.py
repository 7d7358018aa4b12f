"""The study's panels as PNG and SVG files for papers, drawn offline with matplotlib.

    figure_bytes(panel, "svg")          # bytes, e.g. for a dashboard's download button
    save_figure(panel, "fig_a.png")     # the format from the suffix: .png or .svg

The panels (:mod:`vegviz.evaluation.panels`) are HoloViews objects styled for Bokeh. Bokeh's
own PNG/SVG export needs a browser and a web driver, which HPC login nodes and air-gapped
clusters lack; HoloViews' matplotlib backend needs neither. It ignores Bokeh options, so
:func:`for_matplotlib` carries each element's Bokeh options (colours, line styles, colour
maps and ranges, titles, labels, sizes) over to matplotlib: the file shows what the page shows.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import holoviews as hv
import pandas as pd

from .basemap import LAT_TICKS, LON_TICKS, degrees

__all__ = ["FORMATS", "bokeh_options", "figure_bytes", "for_matplotlib", "save_figure"]

FORMATS = ("png", "svg")
#: pixels of a Bokeh frame per inch of the matplotlib figure (so fonts keep their size relative to the plot)
_PX_PER_INCH = 90
_DPI = 200
_BOKEH_HEIGHT = 300  # a Bokeh plot's height when none is set
#: Bokeh option -> matplotlib option of the same meaning (values converted by _value)
_SAME = {"color": "color", "alpha": "alpha", "cmap": "cmap", "marker": "marker", "title": "title",
         "xlabel": "xlabel", "ylabel": "ylabel", "colorbar": "colorbar", "clim": "clim", "logx": "logx",
         "logy": "logy", "xlim": "xlim", "ylim": "ylim", "legend_position": "legend_position",
         "show_legend": "show_legend", "data_aspect": "data_aspect", "invert_yaxis": "invert_yaxis",
         "xrotation": "xrotation", "xticks": "xticks", "yticks": "yticks", "clipping_colors": "clipping_colors",
         "line_width": "linewidth", "line_dash": "linestyle", "fill_color": "facecolor",
         "fill_alpha": "alpha", "text_color": "color", "box_fill_color": "color", "visible": "visible"}
_DASH = {"solid": "-", "dashed": "--", "dotted": ":", "dotdash": "-.", "dashdot": "-."}
_MARKER = {"circle": "o", "square": "s", "triangle": "^", "diamond": "D", "cross": "+", "x": "x"}


_TICKS = {LON_TICKS: "lon", LAT_TICKS: "lat"}


def _degree_formatter(axis: str):
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _pos: degrees(round(v, 4), axis))


def _frame_size(bokeh: dict) -> tuple[float, float]:
    return (float(bokeh.get("frame_width", bokeh.get("width")) or 600),
            float(bokeh.get("frame_height", bokeh.get("height")) or _BOKEH_HEIGHT))


def _date_formatter():
    import matplotlib.dates as mdates

    return mdates.ConciseDateFormatter(mdates.AutoDateLocator())


def _value(bokeh_key: str, value):
    if bokeh_key == "line_dash" and isinstance(value, str):
        return _DASH.get(value, value)
    if bokeh_key == "marker" and isinstance(value, str):
        return _MARKER.get(value, value)
    return value


def bokeh_options(obj) -> dict:
    """The Bokeh options (plot and style) set on ``obj`` itself, without HoloViews' defaults."""
    out = {}
    for group in ("plot", "style"):
        try:
            out.update(obj.opts.get(group, backend="bokeh", defaults=False).kwargs)
        except Exception:  # an object type without bokeh options
            pass
    return out


def _translate(obj):
    """One element or container: its bokeh options as matplotlib options (those matplotlib knows)."""
    plot_class = hv.Store.registry.get("matplotlib", {}).get(type(obj))
    if plot_class is None:
        return obj
    known = set(getattr(plot_class, "style_opts", [])) | set(plot_class.param)
    bokeh = bokeh_options(obj)
    mpl = {}
    for key, value in bokeh.items():
        target = _SAME.get(key)
        if target is not None and target in known:
            mpl[target] = _value(key, value)
    if "size" in bokeh and "s" in known:  # a marker's diameter in pixels; matplotlib wants its area in points²
        mpl["s"] = float(bokeh["size"]) ** 2
    if "line_color" in bokeh:
        for target in ("edgecolor", "color"):
            if target in known and target not in mpl:
                mpl[target] = bokeh["line_color"]
                break
    for key in ("xformatter", "yformatter"):  # the maps' °W/°N ticks (a Bokeh model) as a matplotlib formatter
        name = getattr(bokeh.get(key), "name", None)
        if name in _TICKS and key in known:
            mpl[key] = _degree_formatter(_TICKS[name])
    if isinstance(obj, hv.Layout) and "sublabel_format" in known:  # no A, B, C over the maps
        mpl["sublabel_format"] = ""
    kdims = getattr(obj, "kdims", [])
    if kdims and kdims[0].name == "time" and "xformatter" in known and "xformatter" not in mpl:
        mpl["xformatter"] = _date_formatter()
    if isinstance(obj, hv.BoxWhisker) and isinstance(bokeh.get("box_fill_color"), hv.dim):
        mpl["hooks"] = [_colour_boxes(bokeh["box_fill_color"])]
    width, height = bokeh.get("frame_width", bokeh.get("width")), bokeh.get("frame_height", bokeh.get("height"))
    if "color" in bokeh and "facecolor" in known:  # filled shapes (areas, densities): matplotlib fills from its cycle
        mpl.setdefault("facecolor", bokeh["color"])
        mpl.setdefault("edgecolor", bokeh["color"])
    if bokeh.get("line_alpha") == 0 and "linewidth" in known:  # a band without its outline
        mpl["linewidth"] = 0
    if width and "fig_inches" in known:
        mpl["fig_inches"] = width / _PX_PER_INCH
        if "data_aspect" not in bokeh and "aspect" in known:  # matplotlib's plots are square by default
            mpl["aspect"] = width / (height or _BOKEH_HEIGHT)
    return obj.opts(backend="matplotlib", clone=True, **mpl) if mpl else obj


def _colour_boxes(expr: hv.dim):
    """A matplotlib hook colouring each box by ``expr`` (Bokeh's box_fill_color), with a legend of the colours.

    With two key dimensions (as panel b: vegetation, model) the ticks name the first once per group.
    """
    def hook(plot, element):
        import matplotlib.patches as mpatches

        df = element.dframe()
        kdims = [d.name for d in element.kdims]
        colours = pd.Series(expr.apply(element, expanded=True, flat=True), index=df.index)
        first = df.drop_duplicates(kdims).index  # the boxes' order: groups in order of appearance
        boxes = plot.handles.get("boxes", [])
        if len(boxes) != len(first):
            return
        legend = {}
        for k, (box, row) in enumerate(zip(boxes, first)):
            c = colours[row]
            box.set_color(c)
            for part in ("whiskers", "caps"):
                for line in plot.handles.get(part, [])[2 * k:2 * k + 2]:
                    line.set_color(c)
            legend.setdefault(str(df.loc[row, kdims[-1]]), c)
        ax = plot.handles["axis"]
        if len(kdims) == 2:
            outer = df.loc[first, kdims[0]].astype(str).tolist()
            labels = [name if (k == 0 or outer[k - 1] != name) else "" for k, name in enumerate(outer)]
            ax.set_xticks(ax.get_xticks(), labels, rotation=30, ha="right")
            ax.set_xlabel(kdims[0])
        ax.legend(handles=[mpatches.Patch(color=c, label=m) for m, c in legend.items()], loc="lower right",
                  fontsize="small")

    return hook


def for_matplotlib(obj):
    """A copy of ``obj`` (element, overlay or layout) with its Bokeh options set for matplotlib too."""
    import holoviews.plotting.mpl  # noqa: F401  (registers the matplotlib plot classes)

    return obj.map(_translate, lambda x: True)


def _stacked(layout: hv.Layout, renderer):
    """A one-column layout (a cell's LAI over its forcing) as panels of their own heights on one time axis.

    HoloViews' matplotlib layouts give every row the same height; here each row keeps its
    Bokeh height, and only the last shows the shared axis' ticks.
    """
    import matplotlib.pyplot as plt

    panels = list(layout)
    sizes = [_frame_size(bokeh_options(p)) for p in panels]
    width = max(w for w, _ in sizes) / _PX_PER_INCH
    height = sum(h for _, h in sizes) / _PX_PER_INCH * 1.25  # room for the titles and the last axis
    fig, axes = plt.subplots(len(panels), 1, figsize=(width, height), sharex=True,
                             gridspec_kw={"height_ratios": [h for _, h in sizes]})
    for panel, ax in zip(panels, axes):
        renderer.get_plot(for_matplotlib(panel).opts(aspect="auto", backend="matplotlib"), fig=fig, axis=ax)
    for ax in axes[:-1]:
        ax.tick_params(labelbottom=False)
        ax.set_xlabel("")
    return fig


def figure_bytes(obj, fmt: str = "png", *, dpi: int = _DPI) -> bytes:
    """``obj`` drawn by matplotlib as a PNG or SVG file's bytes."""
    fmt = fmt.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"figure format {fmt!r} is not supported. Fix: use one of {', '.join(FORMATS)}")
    import matplotlib

    matplotlib.use("Agg", force=False)  # no display on servers and login nodes
    import matplotlib.pyplot as plt

    renderer = hv.renderer("matplotlib").instance(dpi=dpi)
    stack = isinstance(obj, hv.Layout) and getattr(obj, "_max_cols", None) == 1 and len(obj) > 1
    buf = io.BytesIO()
    # SVG text stays text (editable in a drawing program, searchable), not outlines
    with warnings.catch_warnings(), matplotlib.rc_context({"svg.fonttype": "none"}):
        # HoloViews draws curves with the format "-" and our line style: matplotlib says the style wins, as meant
        warnings.filterwarnings("ignore", "linestyle is redundantly defined", UserWarning)
        fig = _stacked(obj, renderer) if stack else renderer.get_plot(for_matplotlib(obj)).state
        try:
            fig.savefig(buf, format=fmt, dpi=dpi, bbox_inches="tight")
        finally:
            plt.close(fig)
    return buf.getvalue()


def save_figure(obj, path: str | Path, *, dpi: int = _DPI) -> Path:
    """Write ``obj`` as a PNG or SVG file (by the suffix of ``path``); return the path.

    Written to a temporary name first and renamed, so a failed drawing leaves no partial file.
    """
    path = Path(path)
    data = figure_bytes(obj, path.suffix, dpi=dpi)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path
