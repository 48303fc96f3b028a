"""Figures from (saved) results: builders return ``plotly.graph_objects.Figure``; ``save_figure``
writes them as HTML (always) and PNG (when a browser for kaleido is available).

Conventions:

* Every builder requires a title and axis titles (keyword-only, non-empty). Units belong in the
  axis titles and are the caller's job, e.g. ``y_title="logit difference (nats)"``.
* Intervals come as ``lens_bias.stats.Estimate`` objects; error bars and bands show
  ``[low, high]`` around ``value``, and the hover text gives the interval and ``n``.
* HTML files reference one ``plotly.min.js`` written beside them (``include_plotlyjs="directory"``),
  so each figure is a few KB and still opens offline.
* Beside every figure, ``{stem}.figure.json`` records its title (the caption), axis titles and the figure
  files written (see :func:`save_figure`); ``experiments.figure_index`` builds the figures' index from them.
* PNG export uses kaleido >= 1, which drives a Chrome/Chromium found on the machine, one browser per process
  (kaleido's sync server, started at the first PNG). Discovery is
  kaleido's own (``choreographer``'s ``Chromium.find_browser``): the ``BROWSER_PATH`` environment
  variable if set, else ``chrome``/``chromium``/... on ``PATH``, else typical install paths such as
  Debian's ``/usr/bin/chromium``, else a browser downloaded by ``kaleido_get_chrome``. Without one,
  PNGs are skipped with a single warning naming the fix.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import kaleido
import numpy as np
import plotly.graph_objects as go
from choreographer.browsers.chromium import Chromium
from plotly.colors import DEFAULT_PLOTLY_COLORS, unlabel_rgb
from plotly.offline import get_plotlyjs

from lens_bias.errors import InputError
from lens_bias.files import atomic_path, write_text_atomic
from lens_bias.stats import Estimate

INSTALL_HINT = (
    "PNG export needs a Chrome/Chromium for kaleido; none was found, so only HTML was written. "
    "Install one with `apt-get install -y chromium` (as root, Debian/Ubuntu), or point the "
    "BROWSER_PATH environment variable at an existing Chrome/Chromium executable."
)

#: The sidecar of a figure ``{stem}.html``: ``{stem}.figure.json`` (see :func:`save_figure`).
SIDECAR_SUFFIX = ".figure.json"
#: Tag written into every figure sidecar (bump when its layout changes).
FIGURE_FORMAT = "lens_bias.Figure/1"

_warned_no_browser = False
_png_server_started = False


def find_browser() -> str | None:
    """Path of the Chrome/Chromium kaleido will use for PNG export, or None if there is none
    (kaleido's own search, plus the existence check kaleido applies before launching it)."""
    path = Chromium.find_browser(skip_local=False)
    return path if path and Path(path).is_file() else None


def _split_stem(path_stem: str | Path) -> Path:
    """Accept ``figures/x``, ``figures/x.html`` or ``figures/x.png``; return ``figures/x``.
    Other dots (``fig.v2``) are kept as part of the stem."""
    path = Path(path_stem)
    return path.with_suffix("") if path.suffix in (".html", ".png") else path


def save_figure(fig: go.Figure, path_stem: str | Path, *, png: bool = True) -> list[Path]:
    """Write ``{stem}.html`` (plus ``plotly.min.js`` in the same directory if missing) and, when
    ``png`` and a browser is available, ``{stem}.png``. Creates parent directories.

    Returns the figure files written (HTML first, then PNG if written; not ``plotly.min.js``, not the sidecar).
    Without a browser, the PNG is skipped and a ``UserWarning`` naming the install command is
    issued once per process. Errors of an available browser during export are raised. Every file is
    written atomically (:func:`lens_bias.files.atomic_path`): an interrupt leaves the previous file or none.

    Last, the sidecar ``{stem}.figure.json`` is written: ``{"format", "title", "x_title", "y_title", "files"}``
    (titles as in :func:`layout_titles`, None where the figure has none; ``files``: the names written, beside
    the sidecar), so an index can caption the figure without parsing its HTML.
    """
    global _warned_no_browser
    stem = _split_stem(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    bundle = stem.parent / "plotly.min.js"
    if not bundle.is_file():  # plotly writes it only when missing, and not atomically: write it here first
        write_text_atomic(bundle, get_plotlyjs())
    html = Path(f"{stem}.html")
    with atomic_path(html) as tmp:
        fig.write_html(tmp, include_plotlyjs="directory", full_html=True)
    written = [html]
    if png:
        if find_browser() is None:
            if not _warned_no_browser:
                bad = os.environ.get("BROWSER_PATH")
                hint = INSTALL_HINT + (f" (BROWSER_PATH={bad!r} is not a file.)" if bad else "")
                warnings.warn(hint, UserWarning, stacklevel=2)
                _warned_no_browser = True
        else:
            png_path = Path(f"{stem}.png")
            _start_png_server()
            with atomic_path(png_path) as tmp, warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="The kopts argument is ignored if using a server")
                fig.write_image(tmp, format="png")
            written.append(png_path)
    titles = layout_titles(fig.layout.to_plotly_json())
    sidecar = {"format": FIGURE_FORMAT, **titles, "files": [path.name for path in written]}
    write_text_atomic(Path(f"{stem}{SIDECAR_SUFFIX}"), json.dumps(sidecar, indent=2) + "\n")
    return written


def _start_png_server() -> None:
    """Keep one browser for every PNG export of this process (kaleido's sync server): the first export pays the
    browser's start (about 2 s here), each later one about 0.15 s instead of 2 s; the images are the same bytes."""
    global _png_server_started
    if not _png_server_started:
        kaleido.start_sync_server(silence_warnings=True)
        _png_server_started = True


def layout_titles(layout: Mapping[str, Any]) -> dict[str, str | None]:
    """``{"title", "x_title", "y_title"}`` of a plotly layout given as plain JSON data (``fig.layout.to_plotly_json()``,
    or the layout a saved HTML figure embeds); None for a title the layout lacks (e.g. a table has no axes)."""

    def text(title: Any) -> str | None:
        value = title.get("text") if isinstance(title, Mapping) else title
        return value if isinstance(value, str) and value.strip() else None

    def axis(name: str) -> str | None:
        entry = layout.get(name)
        return text(entry.get("title")) if isinstance(entry, Mapping) else None

    return {"title": text(layout.get("title")), "x_title": axis("xaxis"), "y_title": axis("yaxis")}


def _require_titles(**titles: str) -> None:
    for name, value in titles.items():
        if not isinstance(value, str) or not value.strip():
            raise InputError(f"{name} must be a non-empty string (put units in axis titles)")


def _layout(fig: go.Figure, title: str, x_title: str, y_title: str) -> go.Figure:
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title, template="plotly_white")
    return fig


def _color(i: int, alpha: float = 1.0) -> str:
    r, g, b = unlabel_rgb(DEFAULT_PLOTLY_COLORS[i % len(DEFAULT_PLOTLY_COLORS)])
    return f"rgba({int(r)}, {int(g)}, {int(b)}, {alpha})"


def _interval_arrays(estimates: Sequence[Estimate]) -> tuple[np.ndarray, ...]:
    """(value, low, high, n) as float arrays; n as float so it fits customdata."""
    arr = np.array([[e.value, e.low, e.high, e.n] for e in estimates], dtype=float).reshape(-1, 4)
    return arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3]


_CI_HOVER = "%{y:.3g} [%{customdata[0]:.3g}, %{customdata[1]:.3g}] (n=%{customdata[2]})"


def save_figures(figures: dict[str, go.Figure], folder: str | Path, *, png: bool = True) -> list[Path]:
    """Save every figure of ``{name: figure}`` as ``folder/name`` (see :func:`save_figure`), printing
    the paths written; returns them."""
    written = []
    for name, figure in figures.items():
        paths = save_figure(figure, Path(folder) / name, png=png)
        print("wrote", *paths)
        written.extend(paths)
    return written


def heatmap(
    z: Any,
    x_labels: Sequence[Any],
    y_labels: Sequence[Any],
    *,
    title: str,
    x_title: str,
    y_title: str,
    zmid: float | None = None,
    colorscale: str = "RdBu",
    text_fmt: str | None = None,
) -> go.Figure:
    """Heatmap of a 2-D array ``z`` of shape ``(len(y_labels), len(x_labels))``: row ``i`` is
    ``y_labels[i]`` (drawn bottom to top), column ``j`` is ``x_labels[j]``; NaN cells are blank.

    ``zmid`` centres a diverging colour scale (e.g. 0 for signed effects). ``text_fmt`` is a
    d3-format spec (e.g. ``".2f"``) to print each value in its cell; None prints nothing.
    """
    _require_titles(title=title, x_title=x_title, y_title=y_title)
    values = np.asarray(z.detach().cpu() if hasattr(z, "detach") else z, dtype=float)
    if values.ndim != 2:
        raise InputError(f"z must be 2-D, got shape {values.shape}")
    expected = (len(y_labels), len(x_labels))
    if values.shape != expected:
        raise InputError(f"z has shape {values.shape} but (len(y_labels), len(x_labels)) = {expected}")
    trace = go.Heatmap(
        z=values,
        x=[str(v) for v in x_labels],
        y=[str(v) for v in y_labels],
        zmid=zmid,
        colorscale=colorscale,
        texttemplate=None if text_fmt is None else f"%{{z:{text_fmt}}}",
        hovertemplate=f"{x_title}: %{{x}}<br>{y_title}: %{{y}}<br>value: %{{z}}<extra></extra>",
    )
    fig = go.Figure(trace)
    # categorical axes keep label order and show every label
    fig.update_xaxes(type="category")
    fig.update_yaxes(type="category")
    return _layout(fig, title, x_title, y_title)


def lines_with_ci(
    x: Sequence[Any],
    series: Mapping[str, Sequence[Estimate]],
    *,
    title: str,
    x_title: str,
    y_title: str,
) -> go.Figure:
    """One line (``value``) with a shaded ``[low, high]`` band per series, all over the same
    ``x`` (e.g. layers). Each series must have one Estimate per x; clicking a legend entry toggles
    the line and its band together."""
    _require_titles(title=title, x_title=x_title, y_title=y_title)
    if not series:
        raise InputError("series is empty")
    xs = list(x)
    fig = go.Figure()
    for i, (name, estimates) in enumerate(series.items()):
        if len(estimates) != len(xs):
            raise InputError(f"series {name!r} has {len(estimates)} estimates but x has {len(xs)} points")
        value, low, high, n = _interval_arrays(estimates)
        fig.add_trace(
            go.Scatter(
                x=xs + xs[::-1],
                y=np.concatenate([high, low[::-1]]),
                fill="toself",
                fillcolor=_color(i, 0.2),
                mode="lines",
                line={"width": 0},
                hoverinfo="skip",
                showlegend=False,
                legendgroup=name,
                name=f"{name} CI",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=value,
                mode="lines+markers",
                line={"color": _color(i)},
                name=name,
                legendgroup=name,
                customdata=np.stack([low, high, n], axis=1),
                hovertemplate=f"{name}<br>{x_title}: %{{x}}<br>{_CI_HOVER}<extra></extra>",
            )
        )
    return _layout(fig, title, x_title, y_title)


def bars_with_ci(
    labels: Sequence[Any],
    estimates: Sequence[Estimate] | Mapping[str, Sequence[Estimate]],
    *,
    title: str,
    y_title: str,
    reference_line: float | None = None,
) -> go.Figure:
    """Bars of ``value`` with asymmetric ``[low, high]`` error bars, one bar per label.

    ``estimates`` is a list (one bar per label) or a dict ``group name -> list`` for grouped bars
    (one colour per group, one cluster per label). ``reference_line`` draws a dashed horizontal
    line at that y (e.g. 0.5 for chance, 0 for no effect). The x axis has no title: the labels
    name the bars.
    """
    _require_titles(title=title, y_title=y_title)
    groups = estimates if isinstance(estimates, Mapping) else {"": estimates}
    if not groups:
        raise InputError("estimates is empty")
    names = [str(v) for v in labels]
    fig = go.Figure()
    for i, (group, ests) in enumerate(groups.items()):
        if len(ests) != len(names):
            raise InputError(
                f"{'group ' + repr(group) if group else 'estimates'} has {len(ests)} entries "
                f"but there are {len(names)} labels"
            )
        value, low, high, n = _interval_arrays(ests)
        fig.add_trace(
            go.Bar(
                x=names,
                y=value,
                name=group,
                marker_color=_color(i),
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": high - value,
                    "arrayminus": value - low,
                },
                customdata=np.stack([low, high, n], axis=1),
                hovertemplate=f"{group + '<br>' if group else ''}%{{x}}<br>{_CI_HOVER}<extra></extra>",
                showlegend=bool(group),
            )
        )
    fig.update_layout(barmode="group")
    if reference_line is not None:
        fig.add_hline(y=reference_line, line_dash="dash", line_color="gray")
    fig.update_layout(title=title, yaxis_title=y_title, template="plotly_white")
    return fig


def scatter(
    x: Sequence[float],
    y: Sequence[float],
    labels: Sequence[Any] | None = None,
    *,
    title: str,
    x_title: str,
    y_title: str,
) -> go.Figure:
    """Scatter of paired values ``(x[i], y[i])``; ``labels[i]`` (optional) names each point in
    the hover text."""
    _require_titles(title=title, x_title=x_title, y_title=y_title)
    xa = np.asarray(x, dtype=float)
    ya = np.asarray(y, dtype=float)
    if xa.ndim != 1 or xa.shape != ya.shape:
        raise InputError(f"x and y must be 1-D of equal length, got {xa.shape} and {ya.shape}")
    if labels is not None and len(labels) != xa.size:
        raise InputError(f"labels has {len(labels)} entries but there are {xa.size} points")
    fig = go.Figure(
        go.Scatter(
            x=xa,
            y=ya,
            mode="markers",
            text=None if labels is None else [str(v) for v in labels],
            hovertemplate=(
                ("%{text}<br>" if labels is not None else "")
                + f"{x_title}: %{{x:.3g}}<br>{y_title}: %{{y:.3g}}<extra></extra>"
            ),
        )
    )
    return _layout(fig, title, x_title, y_title)


def side_effect_table(reports: dict[str, dict[str, Any]]) -> go.Figure:
    """A table of side-effect reports (``{intervention name: SideEffectReport.to_dict()}``): per readout the
    baseline, the intervened value, the paired change and whether it is significantly worse."""
    rows = []
    for name, report in reports.items():
        for effect in report["effects"]:
            cells = [Estimate.from_dict(effect[k]) for k in ("baseline", "intervened", "delta")]
            rows.append(
                [name, f"{effect['name']} ({effect['unit']})", *map(str, cells), "yes" if effect["harmed"] else "no"]
            )
    header = ["intervention", "readout", "baseline", "intervened", "change (paired)", "significantly worse"]
    figure = go.Figure(
        go.Table(
            header={"values": header}, cells={"values": list(map(list, zip(*rows)))}, columnwidth=[2, 3, 2, 2, 2, 1]
        )
    )
    figure.update_layout(title="Side effects (95% bootstrap CI over items)", width=1300, height=150 + 45 * len(rows))
    return figure


def pareto_scatter(
    labels: Sequence[str],
    x: Sequence[Estimate],
    y: Sequence[Estimate],
    front: Sequence[bool],
    *,
    title: str,
    x_title: str,
    y_title: str,
) -> go.Figure:
    """Points ``(x[i], y[i])`` named ``labels[i]``, with both intervals as error bars, for a trade-off;
    points with ``front[i]`` (e.g. the Pareto front) are drawn as filled diamonds, the others as open
    circles; dashed lines mark 0."""
    _require_titles(title=title, x_title=x_title, y_title=y_title)
    if not (len(labels) == len(x) == len(y) == len(front)):
        raise InputError(
            f"labels, x, y and front must have equal lengths, got {len(labels)}, {len(x)}, {len(y)}, {len(front)}"
        )
    xv, xl, xh, _ = _interval_arrays(x)
    yv, yl, yh, _ = _interval_arrays(y)
    fig = go.Figure()
    for i, label in enumerate(labels):
        fig.add_trace(
            go.Scatter(
                x=[xv[i]],
                y=[yv[i]],
                mode="markers+text",
                name=str(label),
                text=[str(label)],
                textposition="top center",
                marker={"size": 12, "color": _color(i), "symbol": "diamond" if front[i] else "circle-open"},
                error_x={"type": "data", "symmetric": False, "array": [xh[i] - xv[i]], "arrayminus": [xv[i] - xl[i]]},
                error_y={"type": "data", "symmetric": False, "array": [yh[i] - yv[i]], "arrayminus": [yv[i] - yl[i]]},
                hovertemplate=f"{label}<br>x %{{x:.3g}} [{xl[i]:.3g}, {xh[i]:.3g}]<br>"
                f"y %{{y:.3g}} [{yl[i]:.3g}, {yh[i]:.3g}]<br>Pareto front: {front[i]}<extra></extra>",
            )
        )
    fig.add_hline(y=0, line_dash="dash", line_color="grey")
    fig.add_vline(x=0, line_dash="dash", line_color="grey")
    return _layout(fig, title, x_title, y_title)
