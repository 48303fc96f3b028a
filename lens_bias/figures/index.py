"""The index of a figures folder: every saved experiment result with the command that made it, its provenance,
its figures with their captions and its headline numbers, written into the folder's README between two markers.

Nothing in the index is typed by hand; everything is read from what the experiments saved:

* **Results**: every ``*.json`` under the folder that is a saved :class:`~lens_bias.provenance.Result` of an
  experiment (a name the caller's ``experiments`` lookup knows: :class:`Experiment`). Other saved results
  (steering vectors, interventions an experiment stores beside its own result) are artefacts, not listed.
* **Command**: the experiment's ``command(saved config)``, the command line that reproduces the saved config
  (``python -m experiments.figures --index`` gives :func:`experiments.commands.command_line`).
* **Provenance**: model name, kind and file hash or revision; data fingerprints; seed; git commit and whether
  the checkout had uncommitted changes; the save time (UTC); the device.
* **Figures**: the figures in the result's folder, each linked (its PNG where one was drawn, else its HTML) with
  its caption (the plotly title) and axis titles, from its sidecar ``{stem}.figure.json``
  (:func:`lens_bias.figures.primitives.save_figure`; a figure whose HTML is absent, as in a fresh clone, is found
  by its sidecar) or, for a figure drawn before sidecars existed, from the layout its HTML embeds. In a folder of
  several results, a figure belongs to the result whose file stem starts its name (the longest such); figures of
  no result are listed at the end.
* **Headline numbers**: the experiment's own ``summarize(result)`` where it has one (what its run prints), and
  links to the Markdown tables (``*.md``) it wrote beside the result.

This module reads only saved files; the library never imports the experiments, so what it knows of them comes
in as the ``experiments`` lookup. Order is deterministic (results and figures by path), and the index holds no
time of its own: regenerating it from unchanged results rewrites the README byte for byte.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from lens_bias.errors import InputError
from lens_bias.figures.primitives import FIGURE_FORMAT, SIDECAR_SUFFIX, layout_titles
from lens_bias.files import atomic_path
from lens_bias.provenance import RESULT_FORMAT, Result

START = "<!-- figures-index:start -->"
END = "<!-- figures-index:end -->"
#: The command that rewrites the index (named in it).
INDEX_COMMAND = "python -m experiments.figures --index"

_HEAD_BYTES = 200  # a saved Result's JSON opens with its format tag: read this much to tell one from other JSON
_NEW_PLOT = "Plotly.newPlot("


@dataclass(frozen=True)
class Figure:
    """One figure: its stem (``folder/name``, no suffix), caption and axis titles (None where absent), and the
    figure files that exist (HTML first, then PNG)."""

    stem: Path
    title: str | None
    x_title: str | None
    y_title: str | None
    files: tuple[Path, ...]


@dataclass(frozen=True)
class Experiment:
    """What the index shows of an experiment's results besides the saved files: ``command(saved config)``, the
    command line that reproduces it (raises :class:`InputError` where no command can), and ``summarize(result)``,
    its headline numbers as text (None: none)."""

    command: Callable[[Mapping[str, Any]], str]
    summarize: Callable[[Result], str] | None


#: ``experiments(name)``: the experiment whose results are named ``name``, or None (an artefact, not listed).
Lookup = Callable[[str], Experiment | None]


def read_figure(stem: Path) -> Figure:
    """The figure saved as ``{stem}.html``: titles and files from its sidecar, else from the layout the HTML
    embeds (a figure drawn before sidecars existed; files: the HTML and a PNG beside it, if any)."""
    sidecar = Path(f"{stem}{SIDECAR_SUFFIX}")
    record = json.loads(sidecar.read_text(encoding="utf-8")) if sidecar.is_file() else None
    if record is not None and record.get("format") == FIGURE_FORMAT:
        titles = {key: record.get(key) for key in ("title", "x_title", "y_title")}
        names = record.get("files", [])
    else:
        titles = layout_titles(_embedded_layout(Path(f"{stem}.html")))
        names = [f"{stem.name}.html", f"{stem.name}.png"]
    files = tuple(stem.parent / n for n in names if (stem.parent / n).is_file())
    return Figure(stem, titles["title"], titles["x_title"], titles["y_title"], files)


def _embedded_layout(html: Path) -> dict[str, Any]:
    """The layout of a plotly HTML figure (``Plotly.newPlot(id, data, layout, config)``); ``{}`` if none."""
    text = html.read_text(encoding="utf-8") if html.is_file() else ""
    start = text.find(_NEW_PLOT)
    if start < 0:
        return {}
    decoder, position, parts = json.JSONDecoder(), start + len(_NEW_PLOT), []
    try:
        for _ in range(3):  # the div id, the traces, the layout
            while text[position] in " \t\r\n,":
                position += 1
            part, position = decoder.raw_decode(text, position)
            parts.append(part)
    except (ValueError, IndexError):
        return {}
    return parts[2] if isinstance(parts[2], dict) else {}


def _is_result(path: Path) -> bool:
    with path.open("rb") as handle:
        head = handle.read(_HEAD_BYTES).decode("utf-8", errors="replace")
    return f'"format": "{RESULT_FORMAT}"' in head


def _owner(stem: str, results: list[Path]) -> Path | None:
    """The result a file stem in its folder belongs to: the only one, else the longest stem that starts it."""
    if len(results) == 1:
        return results[0]
    matches = [r for r in results if stem == r.stem or stem.startswith(f"{r.stem}_")]
    return max(matches, key=lambda r: len(r.stem), default=None)


def _hidden(path: Path, folder: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(folder).parts)


def _figure_stems(folder: Path) -> list[Path]:
    """The figures under ``folder``: each drawn figure's HTML or its sidecar (a fresh clone of the repository has
    the sidecars and PNGs only), by path."""
    drawn = {html.with_suffix("") for html in folder.rglob("*.html")}
    sidecars = folder.rglob(f"*{SIDECAR_SUFFIX}")
    drawn |= {sidecar.with_name(sidecar.name.removesuffix(SIDECAR_SUFFIX)) for sidecar in sidecars}
    return sorted(stem for stem in drawn if not _hidden(stem, folder))


def render_index(folder: str | Path, experiments: Lookup) -> str:
    """The Markdown index of ``folder`` (see the module docstring): every experiment result under it, then the
    figures of no result. Links are relative to ``folder`` (where its README lives)."""
    folder = Path(folder)
    results: dict[Path, tuple[Result, Experiment]] = {}
    for path in sorted(p for p in folder.rglob("*.json") if not _hidden(p, folder) and p.is_file()):
        if not path.name.endswith(SIDECAR_SUFFIX) and _is_result(path):
            result = Result.load(path)
            experiment = experiments(result.name)
            if experiment is not None:
                results[path] = (result, experiment)
    by_folder: dict[Path, list[Path]] = {}
    for path in results:
        by_folder.setdefault(path.parent, []).append(path)
    figures: dict[Path | None, list[Figure]] = {}
    tables: dict[Path | None, list[Path]] = {}
    for stem in _figure_stems(folder):
        owner = _owner(stem.name, by_folder.get(stem.parent, []))
        figures.setdefault(owner, []).append(read_figure(stem))
    for table in sorted(p for p in folder.rglob("*.md") if not _hidden(p, folder) and p.parent != folder):
        owner = _owner(table.stem, by_folder.get(table.parent, []))
        if owner is not None:
            tables.setdefault(owner, []).append(table)
    lines = [
        "# Index of the saved results",
        "",
        f"Written by `{INDEX_COMMAND}` (and after every `python -m experiments.figures` run) from the results",
        "saved under this folder and the figures drawn beside them; every number below is read from those files.",
        "Each figure is linked as its PNG where one was drawn (the interactive HTML beside it, which git ignores, is",
        "written by every run and `--replot`). Edit only outside the index markers.",
    ]
    for path, (result, experiment) in results.items():
        section = _result_section(folder, path, result, experiment, figures.get(path, []), tables.get(path, []))
        lines += ["", *section]
    if figures.get(None):
        lines += ["", "## Figures of no saved result", ""]
        lines += [_figure_line(folder, figure) for figure in figures[None]]
    return "\n".join(lines) + "\n"


def _result_section(
    folder: Path, path: Path, result: Result, experiment: Experiment, figures: list[Figure], tables: list[Path]
) -> list[str]:
    relative = path.relative_to(folder).as_posix()
    try:
        command = f"`{experiment.command(result.config)}`"
    except InputError as error:
        command = f"not reconstructible ({error})"
    lines = [
        f"## {result.name}: [`{relative}`]({_link(folder, path)})",
        "",
        f"- command: {command}",
        *_provenance_lines(result.provenance),
    ]
    if tables:
        lines.append("- tables: " + ", ".join(f"[{t.name}]({_link(folder, t)})" for t in tables))
    lines.append("")
    if figures:
        lines += [_figure_line(folder, figure) for figure in figures]
    else:
        lines.append(
            f"Figures not drawn (run --replot): `python -m experiments.{result.name} --replot {folder.as_posix()}/"
            f"{relative}`."
        )
    if experiment.summarize is not None:
        try:
            text = experiment.summarize(result)
        except (KeyError, IndexError, TypeError, ValueError) as error:  # a result older than today's summarize
            text = f"summarize failed on this result ({type(error).__name__}: {error}); rerun the experiment"
        lines += ["", "Headline numbers (`summarize` of the saved result):", "", "```text", text, "```"]
    return lines


def _provenance_lines(provenance: Mapping[str, Any]) -> list[str]:
    """Model, data, and seed / git / time / device lines of a result's provenance."""
    model = provenance.get("model")
    if model:
        sha, revision = model.get("sha256"), model.get("revision")
        digest = f"sha256 `{sha[:12]}`" if sha else f"revision `{revision}`" if revision else "no hash recorded"
        kind = ", ".join(str(v) for v in (model.get("kind"), model.get("dtype"), digest) if v)
        lines = [f"- model: `{model.get('name')}` ({kind})"]
    else:
        lines = ["- model: none"]
    data = provenance.get("data") or {}
    fingerprints = ", ".join(f"{k} {_fingerprint(v)}" for k, v in data.items())
    lines.append(f"- data: {fingerprints or 'none recorded'}")
    git = provenance.get("git")
    if git is None:
        state = "not in a git checkout"
    else:
        commit = git.get("commit")
        dirty = {True: "uncommitted changes", False: "clean", None: "state unknown"}[git.get("dirty")]
        state = f"`{commit[:12]}` ({dirty})" if commit else f"no commit yet ({dirty})"
    build = provenance.get("torch_build") or {}
    device = build.get("gpu") or build.get("device") or "device not recorded"
    saved = str(provenance.get("timestamp_utc", "time not recorded")).replace("T", " ").replace("+00:00", " UTC")
    lines.append(f"- seed {provenance.get('seed')}; git {state}; saved {saved}; {device}")
    return lines


def _fingerprint(value: Any) -> str:
    return "none" if value is None else f"`{value if isinstance(value, str) else json.dumps(value)}`"


def _figure_line(folder: Path, figure: Figure) -> str:
    """One figure's line: its PNG where one was drawn (what the repository keeps), else its HTML."""
    pngs = [file for file in figure.files if file.suffix == ".png"]
    links = [f"[{file.suffix.lstrip('.').upper()}]({_link(folder, file)})" for file in pngs or figure.files]
    axes = "; ".join(f"{axis}: {_plain(t)}" for axis, t in (("x", figure.x_title), ("y", figure.y_title)) if t)
    caption = _plain(figure.title) if figure.title else "(no title)"
    name = figure.stem.relative_to(folder).as_posix()
    return f"- `{name}` {' '.join(links) or '(files missing)'}: {caption}" + (f" ({axes})" if axes else "")


def _link(folder: Path, path: Path) -> str:
    return quote(path.relative_to(folder).as_posix(), safe="/+")


def _plain(text: str) -> str:
    """A plotly title as Markdown text: its HTML markup (``<br>``, ``<sup>``) dropped, Markdown characters escaped."""
    text = re.sub(r"<[^>]*>", " ", text.replace("<br>", " "))
    return re.sub(r"([\\`*_\[\]<>|])", r"\\\1", " ".join(text.split()))


def insert_index(text: str, index: str) -> str:
    """``text`` (a README) with ``index`` between the markers: replacing what they hold, or, without markers,
    inserted after a leading ``# `` title line (at the very top when there is none). Everything outside the
    markers is kept byte for byte. Raises :class:`InputError` for a single or misordered marker."""
    start, end = text.find(START), text.find(END)
    if start < 0 and end < 0:
        title = text.split("\n", 1)[0] + "\n" if text.startswith("# ") else ""
        rest = text[len(title) :]
        head = f"{title}\n" if title else ""
        blank = "" if not rest or rest.startswith("\n") else "\n"  # one blank line between the block and the rest
        return f"{head}{START}\n{index}{END}\n{blank}{rest}"
    if start < 0 or end < start or text.count(START) != 1 or text.count(END) != 1:
        raise InputError(f"Expected one {START} before one {END}; fix the markers by hand, then rerun.")
    return f"{text[: start + len(START)]}\n{index}{text[end:]}"


def write_index(folder: str | Path, experiments: Lookup) -> Path:
    """Write the index of ``folder`` into ``folder/README.md`` (created if missing) atomically; returns its path.
    Raises :class:`InputError` when ``folder`` is not a folder."""
    if not Path(folder).is_dir():
        raise InputError(f"No folder {folder}: give the --out folder the experiments saved their results in.")
    readme = Path(folder) / "README.md"
    old = readme.read_bytes().decode("utf-8") if readme.is_file() else ""
    new = insert_index(old, render_index(folder, experiments))
    with atomic_path(readme) as tmp:
        tmp.write_bytes(new.encode("utf-8"))
    return readme
