"""Tests of lens_bias.figures.index (with the experiments' lookup of experiments.figures): the index of a figures
folder built from saved results and figure sidecars (commands reconstructed from saved configs, provenance,
captions, missing figures), written between markers with the hand-written rest of the README kept byte for byte."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest

from experiments import audit, bias_profile, cli, commands, debias, figures, patching, steering
from lens_bias.errors import InputError
from lens_bias.figures import index as figure_index
from lens_bias.figures import primitives as plotting
from lens_bias.figures.bias_profile import draw as draw_bias_profile
from lens_bias.figures.index import END, START, insert_index, read_figure
from lens_bias.provenance import Result
from lens_bias.stats import Estimate

PROVENANCE = {
    "git": {"commit": "a" * 40, "dirty": True},
    "timestamp_utc": "2026-01-02T03:04:05+00:00",
    "torch_build": {"device": "cpu", "gpu": None},
    "model": {"name": "tiny", "kind": "hf-folder", "dtype": "float32", "sha256": "b" * 64, "revision": None},
    "data": {"stereoset-gender-test": "0123456789abcdef", "extra": None},
    "seed": 3,
}


def _bias_profile(out: Path) -> Result:
    """A bias-profile result of two bias types with tiny made-up estimates (enough for its draw and summarize)."""
    estimate = Estimate(0.6, 0.5, 0.7, 10).to_dict()
    entry = {
        "likelihood": {"share_positive": estimate, "mean_logprob_diff": estimate},
        "ab": {"p_positive": estimate, "position_bias": estimate, "format_mass": estimate},
    }
    config = bias_profile.Config(bias_types=("gender", "race"), n_stereoset=10, png=False, out=out)
    return Result(
        name="bias_profile",
        values={"per_bias_type": {"gender": entry, "race": entry}},
        config={**config.to_dict(), "template": "recorded besides the flags"},
        provenance=PROVENANCE,
    )


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    """A figures folder: a bias profile with its figure, a patching result without figures, a steering vector
    (an artefact, not an experiment result) and an old figure of no result, drawn before sidecars existed."""
    profile = _bias_profile(tmp_path / "bias_profile")
    profile.save(tmp_path / "bias_profile" / "bias_profile")
    plotting.save_figure(draw_bias_profile(profile), tmp_path / "bias_profile" / "bias_profile", png=False)
    config = patching.Config(targets=("z", "resid_pre"), n_pairs=None, stem="swap", out=tmp_path / "patching")
    Result("patching", {}, config.to_dict(), PROVENANCE).save(tmp_path / "patching" / "swap")
    Result("steering_vector", {}, {}, PROVENANCE).save(tmp_path / "bias_profile" / "vectors" / "gender")
    old = plotting.heatmap(
        [[0.0, 1.0]], ["a", "b"], [0], title="z denoising<br><sup>tiny, mean of 2 pairs</sup>", x_title="head",
        y_title="layer",
    )  # fmt: skip
    plotting.save_figure(old, tmp_path / "loose" / "old", png=False)
    (tmp_path / "loose" / f"old{plotting.SIDECAR_SUFFIX}").unlink()
    return tmp_path


def render_index(folder: Path) -> str:
    return figure_index.render_index(folder, commands.experiment)


def write_index(folder: Path) -> Path:
    return figure_index.write_index(folder, commands.experiment)


def command_line(name: str, saved: dict) -> str:
    config = commands.experiment_config(name)
    if config is None:
        raise InputError(f"No experiment {name!r}")
    return commands.command_line(name, config, saved)


def test_the_index_lists_each_result_with_its_command_provenance_figures_and_summary(saved):
    text = render_index(saved)
    out = shlex.quote(str(saved / "bias_profile"))
    assert "## bias_profile: [`bias_profile/bias_profile.json`](bias_profile/bias_profile.json)" in text
    assert (
        f"- command: `python -m experiments.bias_profile --out {out} --no-png --bias-types gender race "
        "--n-stereoset 10`" in text
    )
    assert "- model: `tiny` (hf-folder, float32, sha256 `bbbbbbbbbbbb`)" in text
    assert "- data: stereoset-gender-test `0123456789abcdef`, extra none" in text
    assert "- seed 3; git `aaaaaaaaaaaa` (uncommitted changes); saved 2026-01-02 03:04:05 UTC; cpu" in text
    assert (
        "- `bias_profile/bias_profile` [HTML](bias_profile/bias_profile.html): Preference for the stereotype on "
        "held-out StereoSet pairs (tiny) (y: share / probability (0.5 = no preference))" in text
    )
    summary = bias_profile.summarize(Result.load(saved / "bias_profile" / "bias_profile.json"))
    assert f"```text\n{summary}\n```" in text
    patching_section = text[text.index("## patching") :]
    assert patching_section.startswith("## patching: [`patching/swap.json`](patching/swap.json)")
    assert "--targets z resid_pre --n-pairs all --stem swap" in patching_section
    assert (
        f"Figures not drawn (run --replot): `python -m experiments.patching --replot {saved.as_posix()}/"
        "patching/swap.json`" in patching_section
    )
    assert "steering_vector" not in text and "vectors/gender" not in text  # artefacts are not experiment results
    orphans = text[text.index("## Figures of no saved result") :]
    assert "- `loose/old` [HTML](loose/old.html): z denoising tiny, mean of 2 pairs (x: head; y: layer)" in orphans
    assert render_index(saved) == text  # deterministic


def test_a_figure_reads_the_same_from_its_sidecar_and_from_its_html(tmp_path):
    figure = plotting.scatter([1, 2], [3, 4], title="Scores <br>by layer", x_title="layer", y_title="score (nats)")
    plotting.save_figure(figure, tmp_path / "f", png=False)
    from_sidecar = read_figure(tmp_path / "f")
    (tmp_path / f"f{plotting.SIDECAR_SUFFIX}").unlink()
    assert read_figure(tmp_path / "f") == from_sidecar
    assert from_sidecar.title == "Scores <br>by layer" and from_sidecar.y_title == "score (nats)"
    assert from_sidecar.files == (tmp_path / "f.html",)


@pytest.mark.parametrize(
    ("module", "config", "expected"),
    [
        (patching, patching.Config(), ""),
        (
            patching,
            patching.Config(targets=("z",), n_pairs=None, png=False, crows_types=("age",), pairs="crows_pairs"),
            "--no-png --targets z --n-pairs all --pairs crows_pairs --crows-types age",
        ),
        (
            audit,
            audit.Config(bbq_chat=True, n_persona_bbq=None, refusal_vector=(0.5, -1.0), measures=("bbq", "service")),
            "--measures bbq service --bbq-chat --n-persona-bbq all --refusal-vector 0.5 -1.0",
        ),
        (
            steering,
            steering.Config(normalize=False, multipliers=(-4.0, 0.0, 4.0), seed=2),
            "--seed 2 --multipliers -4.0 0.0 4.0 --no-normalize",  # a default-true switch: --no-<name>
        ),
        (
            debias,
            debias.Config(methods=("circuit_edges",), circuit_control=None, circuit_k=50),
            "--methods circuit_edges --circuit-control none --circuit-k 50",  # an optional name: none is None
        ),
    ],
)
def test_the_command_gives_the_non_default_flags_and_reproduces_the_saved_config(module, config, expected):
    name = module.__name__.removeprefix("experiments.")
    saved = {**config.to_dict(), "recorded": "not a flag"}
    command = command_line(name, saved)
    assert command == f"python -m experiments.{name} {expected}".strip()
    parsed, _ = cli.parse(module.Config, shlex.split(command)[3:])
    assert parsed.to_dict() == config.to_dict()
    assert command_line(name, {k: v for k, v in saved.items() if k != "seed"}).count("--seed") == 0  # not recorded


def test_a_command_no_flag_can_give_is_refused():
    with pytest.raises(InputError, match="bias_types=None cannot be given as a flag"):
        command_line("bias_profile", {"bias_types": None})
    assert commands.experiment("steering_vector") is None and commands.experiment_config("steering_vector") is None


def test_the_index_goes_between_the_markers_and_the_rest_stays_byte_for_byte():
    notes = "Hand-written: 0.42 [0.10, 0.90]\r\n| a | b |  \n\n## Later\n"
    inserted = insert_index(notes, "first\n")
    assert inserted == f"{START}\nfirst\n{END}\n\n{notes}"
    replaced = insert_index(inserted, "second\n")
    assert replaced == f"{START}\nsecond\n{END}\n\n{notes}"
    titled = "# Figures\n\nnotes\n"
    assert insert_index(titled, "x\n") == f"# Figures\n\n{START}\nx\n{END}\n\nnotes\n"
    assert insert_index("", "x\n") == f"{START}\nx\n{END}\n"
    for broken in (f"{START}\nno end\n", f"{END}\n{START}\n", f"{START}\n{START}\n{END}\n"):
        with pytest.raises(InputError, match="markers"):
            insert_index(broken, "x\n")


def test_write_index_rewrites_only_its_block_and_is_idempotent(saved):
    readme = saved / "README.md"
    notes = b"# Figures\n\nMeasured by hand: 57.9 [56.4, 59.4]\r\ntrailing spaces  \n"
    readme.write_bytes(notes)
    assert write_index(saved) == readme
    first = readme.read_bytes()
    assert first.startswith(b"# Figures\n\n" + START.encode()) and first.endswith(f"{END}\n".encode() + notes[10:])
    assert render_index(saved).encode() in first
    write_index(saved)
    assert readme.read_bytes() == first
    with pytest.raises(InputError, match="No folder"):
        write_index(saved / "missing")


def test_a_figure_with_a_png_is_linked_as_its_png_the_file_the_repository_keeps(tmp_path):
    figure = plotting.scatter([1, 2], [3, 4], title="Scores", x_title="layer", y_title="score (nats)")
    plotting.save_figure(figure, tmp_path / "loose" / "drawn", png=False)
    plotting.save_figure(figure, tmp_path / "loose" / "html_only", png=False)
    (tmp_path / "loose" / "drawn.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "loose" / f"drawn{plotting.SIDECAR_SUFFIX}").unlink()  # the HTML's layout and both files
    text = render_index(tmp_path)
    assert "- `loose/drawn` [PNG](loose/drawn.png): Scores (x: layer; y: score (nats))" in text
    assert "- `loose/html_only` [HTML](loose/html_only.html): Scores" in text


def test_a_fresh_clone_without_the_html_indexes_each_figure_by_its_sidecar_and_png(tmp_path):
    figure = plotting.scatter([1, 2], [3, 4], title="Scores", x_title="layer", y_title="score (nats)")
    plotting.save_figure(figure, tmp_path / "loose" / "kept", png=False)
    (tmp_path / "loose" / "kept.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    sidecar = json.loads((tmp_path / "loose" / f"kept{plotting.SIDECAR_SUFFIX}").read_text(encoding="utf-8"))
    sidecar["files"] = ["kept.html", "kept.png"]
    (tmp_path / "loose" / f"kept{plotting.SIDECAR_SUFFIX}").write_text(json.dumps(sidecar), encoding="utf-8")
    with_html = render_index(tmp_path)
    (tmp_path / "loose" / "kept.html").unlink()  # what git keeps: the sidecar and the PNG
    text = render_index(tmp_path)
    assert "- `loose/kept` [PNG](loose/kept.png): Scores (x: layer; y: score (nats))" in text
    assert text == with_html


def test_every_link_of_the_repositorys_figures_readme_is_a_file_of_the_repository_and_every_study_is_indexed():
    """What a fresh clone shows: the committed index links only committed files (PNGs, results, tables), and it
    holds a result of every step of ``experiments.figures``."""
    folder = Path(__file__).resolve().parents[2] / "figures"
    text = (folder / "README.md").read_text(encoding="utf-8")
    links = [unquote(link) for link in re.findall(r"\]\(([^)#][^)]*)\)", text) if "://" not in link]
    assert links and [link for link in links if not (folder / link).is_file()] == []
    tracked = subprocess.run(
        ["git", "ls-files", "figures"], cwd=folder.parent, capture_output=True, text=True, check=True
    ).stdout.split()
    assert {f"figures/{link}" for link in links} <= set(tracked)
    index = text[text.index(START) : text.index(END)]
    for step in figures.STEPS:
        result = figures.plan(step, figures.Config(out=Path(".")))[2]
        assert f"]({result.as_posix()})" in index, step
