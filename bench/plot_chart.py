"""One benchmark chart: the measured values as grouped bars beside the ratios of the subject
(lpk) to every peer measured in the same run, the run's machine and date in a caption.

Used by bench/plots.py; needs matplotlib (Debian's python3-matplotlib). The SVG is
reproducible (fixed id salt, no date in its metadata), so rendering the same results twice
writes the same bytes and a regenerated chart shows up in git only when its numbers changed.
"""
import math
import os
import textwrap
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")  # files only: no display on CI or over ssh
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
from matplotlib import lines, patches, ticker  # noqa: E402

matplotlib.rcParams.update({
    "svg.hashsalt": "lpk-bench",   # stable ids: same results, same bytes
    "svg.fonttype": "none",        # text stays text: smaller, searchable, selectable
    "font.size": 9,
    "font.family": "DejaVu Sans",  # Debian's matplotlib font; one name keeps the SVG small
    "axes.spines.top": False,
    "axes.spines.right": False,
})

# Label and colour of every series, the same in every chart: lpk is always the orange one.
SERIES = {
    "raw": ("raw loopback", "#a6a6a6"),
    "socat": ("socat", "#7b9fd4"),
    "socat2": ("2 socats", "#66c2a5"),
    "ssh": ("ssh -L", "#e78ac3"),
    "lpk": ("lpk", "#e6550d"),
    "dnsmasq": ("dnsmasq", "#7b9fd4"),
    "cpp": ("C++ WebSocket per connection", "#66c2a5"),
    "python": ("python client, WebSocket per connection", "#7b9fd4"),
    "crun": ("containers (crun)", "#e6550d"),
    "direct": ("nginx direct", "#a6a6a6"),
    "haproxy": ("HAProxy (mode http)", "#7b9fd4"),
    "router": ("lpk-agent router", "#e6550d"),
    "host-binary": ("host binary", "#a6a6a6"),
    "straight": ("straight to the pods", "#a6a6a6"),
    "routed": ("through lpk's router", "#e6550d"),
    "p50": ("p50", "#fdae6b"),
    "p99": ("p99", "#e6550d"),
    "max": ("max", "#a63603"),
}
FLOOR_COLOUR = "#b30000"


@dataclass
class Chart:
    """What one figure shows. values[group][series] is a number or None (not measured)."""
    name: str                 # file stem under the output directory
    title: str
    unit: str                 # label of the values' axis, with its unit
    groups: list
    values: dict
    higher_better: bool
    caption: str
    series: list              # keys of SERIES, in drawing order
    subject: str = "lpk"      # whose ratio to each other series; None: no ratio panel
    log: bool = False
    floor: tuple = None       # (value, label): a dashed line on the values' axis
    note: str = ""            # a line above the caption (floors, what has no figure)
    panel_title: str = "measured (median of the run)"
    subject_label: str = None  # a short name for the subject in the ratio panel
    labels: dict = field(default_factory=dict)  # series key -> label, over SERIES

    def label(self, key):
        return self.labels.get(key) or SERIES.get(key, (key, None))[0]


def ratio(chart, group, peer):
    """How many times better the subject did than peer: above 1 the subject wins."""
    subj, other = chart.values[group].get(chart.subject), chart.values[group].get(peer)
    if not subj or not other:
        return None
    return subj / other if chart.higher_better else other / subj


def fmt_value(v):
    if v is None:
        return ""
    a = abs(v)
    return f"{v:,.0f}" if a >= 100 else f"{v:.1f}" if a >= 10 else f"{v:.2f}"


def colour(key):
    return SERIES.get(key, (key, "#555555"))[1]


def grouped_bars(ax, groups, series, value_of, text=fmt_value, base=0, wrap=18):
    """Bars of every series in every group from base to the value, each labelled with
    text(value); returns the values drawn (for the axis limits). A missing (or zero: no bar on a
    log axis) value leaves a gap."""
    width = 0.8 / max(1, len(series))
    heights = []
    for i, key in enumerate(series):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        vs = [value_of(group, key) for group in groups]
        shown = [v - base if v else math.nan for v in vs]
        bars = ax.bar(xs, shown, width * 0.92, bottom=base, color=colour(key), label=key)
        ax.bar_label(bars, [text(v) if v else "" for v in vs],
                     fontsize=7, rotation=90, padding=2)
        heights += [v for v in vs if v]
    ax.set_xticks(range(len(groups)), ["\n".join(textwrap.wrap(g, wrap)) for g in groups])
    return heights


def headroom(ax, heights, log):
    """Room above the tallest bar for its rotated label."""
    if not heights:
        return
    top = max(heights)
    if log:
        ax.set_yscale("log")
        ax.set_ylim(min(heights) / 3, top * 8)
    else:
        ax.set_ylim(0, top * 1.3)


def value_panel(ax, chart):
    heights = grouped_bars(ax, chart.groups, chart.series, lambda g, k: chart.values[g].get(k),
                           wrap=max(10, 60 // len(chart.groups)))
    if chart.floor:
        ax.axhline(chart.floor[0], color=FLOOR_COLOUR, linestyle="--", linewidth=1)
        heights.append(chart.floor[0])
    headroom(ax, heights, chart.log)
    if not chart.log:
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:,g}"))
    ax.set_ylabel(chart.unit)
    ax.set_title(chart.panel_title, fontsize=9)
    ax.grid(axis="y", alpha=0.3)


def ratio_panel(ax, chart):
    peers = [s for s in chart.series if s != chart.subject]
    # Bars grow from 1x: up where the subject wins, down where it loses.
    heights = grouped_bars(ax, chart.groups, peers, lambda g, k: ratio(chart, g, k),
                           text=lambda r: f"{r:.2f}x", base=1.0, wrap=11)
    ax.axhline(1.0, color="black", linewidth=0.8)
    heights.append(1.0)
    headroom(ax, heights, True)
    ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.yaxis.set_minor_formatter(ticker.NullFormatter())
    who = chart.subject_label or chart.label(chart.subject)
    how = f"{who} ÷ peer" if chart.higher_better else f"peer ÷ {who}"
    ax.set_ylabel(f"{how}\n(above 1x: {who} better)")
    ax.set_title(f"{who} vs each peer, same run", fontsize=9)
    ax.grid(axis="y", alpha=0.3)


def figure(chart):
    with_ratios = chart.subject is not None
    fig, axes = plt.subplots(1, 2 if with_ratios else 1, figsize=(10 if with_ratios else 7, 4.6),
                             gridspec_kw={"width_ratios": [3, 2]} if with_ratios else None,
                             squeeze=False)
    value_panel(axes[0][0], chart)
    if with_ratios:
        ratio_panel(axes[0][1], chart)
    handles = [patches.Patch(color=colour(k), label=chart.label(k)) for k in chart.series]
    if chart.floor:
        handles.append(lines.Line2D([], [], color=FLOOR_COLOUR, linestyle="--",
                                    label=chart.floor[1]))
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.93),
               ncol=min(len(handles), 6), frameon=False, fontsize=8)
    fig.suptitle(chart.title, fontsize=11, fontweight="bold", y=0.99)
    caption = "\n".join(textwrap.wrap(chart.caption, 150 if with_ratios else 105))
    if chart.note:
        caption = chart.note + "\n" + caption
    caption_lines = caption.count("\n") + 1
    fig.text(0.01, 0.01, caption, fontsize=7, va="bottom", ha="left", color="#333333")
    fig.subplots_adjust(top=0.80, bottom=0.12 + 0.033 * caption_lines, left=0.08, right=0.98,
                        wspace=0.3)
    return fig


def render(chart, out_dir, formats=("svg",)):
    """Writes out_dir/<name>.<format> for each format; returns the paths written."""
    fig = figure(chart)
    paths = []
    for fmt in formats:
        path = os.path.join(out_dir, f"{chart.name}.{fmt}")
        meta = {"Date": None} if fmt == "svg" else {}
        fig.savefig(path, format=fmt, metadata=meta, dpi=110)
        paths.append(path)
    plt.close(fig)
    return paths
