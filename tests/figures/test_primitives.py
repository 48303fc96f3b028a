"""Tests of lens_bias.figures.primitives: builders validate shapes and titles; save_figure writes small
HTML beside one plotly.min.js, a real PNG when a browser exists, and a clear warning when not."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest

from lens_bias.figures import primitives as plotting
from lens_bias.stats import Estimate

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _estimates(k: int, offset: float = 0.0) -> list[Estimate]:
    return [Estimate(i + offset, i + offset - 0.5, i + offset + 1.0, 10 + i) for i in range(k)]


def _small_figure() -> go.Figure:
    return plotting.scatter([1, 2, 3], [3, 1, 2], title="t", x_title="x (units)", y_title="y")


def test_heatmap_shape_labels_and_validation() -> None:
    z = np.arange(6.0).reshape(2, 3)
    fig = plotting.heatmap(
        z,
        ["a", "b", "c"],
        [0, 1],
        title="T",
        x_title="head",
        y_title="layer",
        zmid=0.0,
        text_fmt=".2f",
    )
    trace = fig.data[0]
    assert np.array_equal(np.asarray(trace.z), z)
    assert list(trace.x) == ["a", "b", "c"] and list(trace.y) == ["0", "1"]
    assert trace.zmid == 0.0 and trace.texttemplate == "%{z:.2f}"
    assert fig.layout.title.text == "T" and fig.layout.xaxis.title.text == "head"
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        plotting.heatmap(z, ["a", "b"], [0, 1], title="T", x_title="x", y_title="y")
    with pytest.raises(ValueError, match="2-D"):
        plotting.heatmap(np.ones(3), ["a"], [0], title="T", x_title="x", y_title="y")
    with pytest.raises(ValueError, match="title"):
        plotting.heatmap(z, ["a", "b", "c"], [0, 1], title=" ", x_title="x", y_title="y")


def test_lines_with_ci_band_and_line_per_series() -> None:
    fig = plotting.lines_with_ci(
        [0, 1, 2],
        {"a": _estimates(3), "b": _estimates(3, 1.0)},
        title="T",
        x_title="layer",
        y_title="score (nats)",
    )
    assert len(fig.data) == 4  # band + line per series
    band, line = fig.data[0], fig.data[1]
    assert band.fill == "toself"
    assert list(band.y) == [1.0, 2.0, 3.0, 1.5, 0.5, -0.5]  # highs, then lows reversed
    assert list(line.y) == [0.0, 1.0, 2.0] and line.name == "a"
    with pytest.raises(ValueError, match="'b' has 2 estimates"):
        plotting.lines_with_ci(
            [0, 1, 2],
            {"a": _estimates(3), "b": _estimates(2)},
            title="T",
            x_title="x",
            y_title="y",
        )


def test_bars_with_ci_single_and_grouped() -> None:
    fig = plotting.bars_with_ci(["p", "q"], _estimates(2), title="T", y_title="share", reference_line=0.5)
    bar = fig.data[0]
    assert list(bar.y) == [0.0, 1.0]
    assert list(bar.error_y.array) == [1.0, 1.0] and list(bar.error_y.arrayminus) == [0.5, 0.5]
    assert fig.layout.shapes[0].y0 == 0.5
    grouped = plotting.bars_with_ci(["p", "q"], {"g1": _estimates(2), "g2": _estimates(2, 2.0)}, title="T", y_title="s")
    assert [t.name for t in grouped.data] == ["g1", "g2"]
    assert grouped.layout.barmode == "group"
    with pytest.raises(ValueError, match="3 labels"):
        plotting.bars_with_ci(["p", "q", "r"], _estimates(2), title="T", y_title="s")


def test_scatter_validation() -> None:
    fig = plotting.scatter([1, 2], [3, 4], ["a", "b"], title="T", x_title="x", y_title="y")
    assert list(fig.data[0].text) == ["a", "b"]
    with pytest.raises(ValueError, match="equal length"):
        plotting.scatter([1, 2], [3], title="T", x_title="x", y_title="y")
    with pytest.raises(ValueError, match="labels"):
        plotting.scatter([1, 2], [3, 4], ["a"], title="T", x_title="x", y_title="y")


def test_save_figure_html_and_png(tmp_path: Path) -> None:
    if plotting.find_browser() is None:
        pytest.skip("no Chrome/Chromium for kaleido: " + plotting.INSTALL_HINT)
    written = plotting.save_figure(_small_figure(), tmp_path / "sub" / "fig")
    html, png = tmp_path / "sub" / "fig.html", tmp_path / "sub" / "fig.png"
    assert written == [html, png]
    assert html.stat().st_size < 100_000
    assert 'src="plotly.min.js"' in html.read_text()
    assert (tmp_path / "sub" / "plotly.min.js").stat().st_size > 1_000_000
    assert png.read_bytes()[:8] == PNG_MAGIC


def test_save_figure_without_browser_warns_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plotting.Chromium, "find_browser", classmethod(lambda cls, **kw: None))
    monkeypatch.setattr(plotting, "_warned_no_browser", False)
    monkeypatch.delenv("BROWSER_PATH", raising=False)
    with pytest.warns(UserWarning, match=r"apt-get install -y chromium"):
        written = plotting.save_figure(_small_figure(), tmp_path / "a.html")
    assert written == [tmp_path / "a.html"]
    assert not (tmp_path / "a.png").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert plotting.save_figure(_small_figure(), tmp_path / "b") == [tmp_path / "b.html"]
    # one plotly.min.js shared by both figures; png=False never looks for a browser
    assert [p.name for p in tmp_path.glob("*.js")] == ["plotly.min.js"]
    assert plotting.save_figure(_small_figure(), tmp_path / "c", png=False) == [tmp_path / "c.html"]


def test_find_browser_rejects_missing_browser_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bogus = tmp_path / "no-such-chrome"
    monkeypatch.setenv("BROWSER_PATH", str(bogus))
    assert plotting.find_browser() != str(bogus)


def test_save_figures_writes_one_file_per_figure(tmp_path):
    import plotly.graph_objects as go

    from lens_bias.figures.primitives import save_figures

    figures = {"a": go.Figure(go.Scatter(x=[0, 1], y=[1, 0])), "b": go.Figure(go.Bar(x=["x"], y=[1]))}
    written = save_figures(figures, tmp_path / "out", png=False)
    assert sorted(p.name for p in written) == ["a.html", "b.html"] and all(p.is_file() for p in written)


@pytest.mark.parametrize("writer", ["write_html", "write_image"])
def test_an_interrupted_figure_write_leaves_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer: str
) -> None:
    import plotly.graph_objects as go

    suffix = ".html" if writer == "write_html" else ".png"
    target = tmp_path / f"fig{suffix}"
    target.write_text("previous figure")
    real = getattr(go.Figure, writer)

    def interrupted(fig, path, *args, **kwargs):
        Path(path).write_text("half a fig")
        raise KeyboardInterrupt

    def png_bytes(fig, path, *args, **kwargs):
        Path(path).write_bytes(PNG_MAGIC)

    monkeypatch.setattr(plotting, "find_browser", lambda: "/usr/bin/chromium")
    monkeypatch.setattr(go.Figure, "write_image", png_bytes)
    monkeypatch.setattr(go.Figure, writer, interrupted)
    with pytest.raises(KeyboardInterrupt):
        plotting.save_figure(_small_figure(), tmp_path / "fig")
    assert target.read_text() == "previous figure"
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    monkeypatch.setattr(go.Figure, writer, real if writer == "write_html" else png_bytes)
    assert plotting.save_figure(_small_figure(), tmp_path / "fig") == [tmp_path / "fig.html", tmp_path / "fig.png"]
    assert (tmp_path / "fig.png").read_bytes() == PNG_MAGIC and "plotly" in (tmp_path / "fig.html").read_text()


def test_save_figure_writes_a_sidecar_with_the_caption_and_files(tmp_path: Path) -> None:
    import json

    assert plotting.save_figure(_small_figure(), tmp_path / "fig.html", png=False) == [tmp_path / "fig.html"]
    sidecar = json.loads((tmp_path / f"fig{plotting.SIDECAR_SUFFIX}").read_text())
    assert sidecar == {
        "format": plotting.FIGURE_FORMAT,
        "title": "t",
        "x_title": "x (units)",
        "y_title": "y",
        "files": ["fig.html"],
    }
    plotting.save_figure(go.Figure(go.Bar(x=["a"], y=[1])), tmp_path / "bare", png=False)
    bare = json.loads((tmp_path / f"bare{plotting.SIDECAR_SUFFIX}").read_text())
    assert bare["title"] is None and bare["x_title"] is None and bare["files"] == ["bare.html"]
