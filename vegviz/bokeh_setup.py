"""Bokeh validation settings shared by every vegviz plot (imported where plots are built).

vegviz sizes plot frames (HoloViews' ``frame_width``/``frame_height``, so maps keep true cell
shapes). HoloViews then leaves the figure's outer width/height unset, and Bokeh's validator
reports W-1005 (FIXED_SIZING_MODE) on every served session although the layout is exact
(holoviz/holoviews#6668; HoloViews silences the same check in ``hv.save``). Bokeh's
silencing is process-wide, so this also quiets W-1005 for other figures of the process.
"""
from bokeh.core.validation import silence
from bokeh.core.validation.warnings import FIXED_SIZING_MODE

silence(FIXED_SIZING_MODE, True)
