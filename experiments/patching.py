"""Where does the model carry a stereotype? Activation patching on term-swap pairs.

``--pairs gender-swap`` (default): pairs come from the project's gender templates
(:func:`lens_bias.data.gender_swap.gender_swap_pairs`): one template (``--group``, default
``occupation-t0``: "The {occupation} walked into the room and"), the clean prompt with a term stereotyped
one way (nurse -> " she"), the corrupted prompt with a term stereotyped the other way (carpenter -> " he").
Metric: logit(clean's stereotyped pronoun) - logit(the other pronoun) at the last prompt token. Kept:
pairs whose clean and corrupted prompts tokenize to the same length (the others are counted as dropped);
among those the pairs of the most common length, so that positions line up across pairs and scores can
be averaged position by position; among those, in a seeded random order, the first ``--n-pairs`` whose
clean metric exceeds the corrupted one by at least ``--min-gap`` nats (>= 0: the model shows the
stereotype there, so normalised scores are well defined; how many of the screened pairs do is reported).

``--pairs crows-pairs``: CrowS-Pairs sentences (``--crows-types``, default all nine types), clean = the more
stereotyping sentence, corrupted = the other, kept where the two differ in one span of tokens of the same
length and share the rest of the sentence after it (:func:`lens_bias.patching.minimal_pair_inputs`).
Metric: the summed log-probability of that shared continuation. Pairs differ in length and wording, so
positions do not line up across pairs: only whole-layer head targets (``z``, ``k``, ``v``) are averaged.

For each target, exact activation patching (``--direction``, default denoising: clean activations into
the corrupted run; score 1 = clean behaviour restored, 0 = corrupted) and attribution patching, their
agreement (Pearson, top-10 overlap), and heatmaps of the pair-mean scores (layer x position with token
labels, or layer x head). Writes ``{out}/patching.json`` + ``.safetensors`` (per-pair scores) and
``{out}/patching_{target}_{exact|attribution}.{html,png}`` (``patching_quick*`` with ``--quick``).

    python -m experiments.patching [--model NAME] [--targets resid_pre attn_out mlp_out z] [--n-pairs 24]
        [--group occupation-t0] [--direction denoising] [--seed 0] [--out figures/patching] [--quick]
    python -m experiments.patching --pairs crows-pairs --targets z [--crows-types race-color gender]
    python -m experiments.patching --replot figures/patching/patching.json
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np

from experiments import cli
from lens_bias.cells import CellStore, model_key
from lens_bias.data import CROWS_BIAS_TYPES, crows_pairs_contrast, load_crows_pairs
from lens_bias.data.gender_swap import gender_swap_groups, gender_swap_pairs
from lens_bias.data.records import fingerprint
from lens_bias.errors import InputError
from lens_bias.figures.primitives import heatmap, save_figure
from lens_bias.models import load_model, model_record
from lens_bias.patching import (
    DIRECTIONS,
    TARGETS,
    Direction,
    PatchResult,
    agreement,
    attribution_patch,
    minimal_pair_inputs,
    patch,
    patching_inputs,
    screen_pairs,
)
from lens_bias.provenance import Result, collect_provenance, set_seed

DEFAULT_TARGETS = ("resid_pre", "attn_out", "mlp_out", "z")
#: What --quick changes (a smoke run).
QUICK = {"n_pairs": 2, "targets": ["resid_pre", "z"], "stem": "patching_quick"}
METRIC_NAMES = {
    "gender-swap": "logit(stereotyped pronoun of the clean term) - logit(other pronoun), nats",
    "crows-pairs": "summed log P of the sentence after the swapped term, nats",
}


@dataclass(frozen=True)
class Config(cli.SweepConfig):
    """Activation and attribution patching of term-swap pairs (see the module docstring)."""

    targets: tuple[str, ...] = field(
        default=DEFAULT_TARGETS, metadata={"help": "activations patched", "choices": list(TARGETS)}
    )
    n_pairs: int | None = field(default=24, metadata={"help": "pairs kept among those with the gap", "min": 1})
    pairs: str = field(default="gender-swap", metadata={"choices": ["gender-swap", "crows-pairs"]})
    group: str = field(
        default="occupation-t0",
        metadata={"help": "gender-swap pairs: the template the pairs come from", "choices": gender_swap_groups()},
    )
    crows_types: tuple[str, ...] | None = field(
        default=None, metadata={"help": "crows-pairs: bias types (default all)", "choices": list(CROWS_BIAS_TYPES)}
    )
    direction: str = field(default="denoising", metadata={"choices": list(DIRECTIONS)})
    min_gap: float = field(
        default=1.0, metadata={"help": "keep pairs whose clean - corrupted metric is at least this (nats)", "min": 0}
    )
    stem: str = field(
        default="patching",
        metadata={"help": "file name of the result and the figures, without suffix (--quick: patching_quick)"},
    )
    batch_size: int = field(default=64, metadata={"help": "rows per patched forward", "min": 1})
    out: Path = field(default=Path("figures/patching"), metadata={"help": "output folder (results, figures)"})

    def __post_init__(self) -> None:
        if not self.targets:
            raise InputError("--targets: give at least one target.")
        if self.pairs == "crows-pairs" and any(TARGETS[t].unit != "head" for t in self.targets):
            raise InputError(
                "crows-pairs sentences do not share positions across pairs: use whole-layer head "
                "targets (--targets z, k or v)"
            )
        if self.crows_types is not None and not self.crows_types:
            raise InputError("--crows-types: give at least one bias type, or omit the flag for all of them.")
        if not self.stem or Path(self.stem).name != self.stem:
            raise InputError(f"--stem {self.stem!r}: give a file name without folders (the folder is --out).")
        super().__post_init__()


def select_crows_pairs(model, types, n_pairs: int | None, min_gap: float, seed: int, batch_size: int):
    """CrowS-Pairs minimal pairs (see the module docstring), screened by :func:`lens_bias.patching.screen_pairs`.
    Returns (inputs, counts)."""
    candidates = crows_pairs_contrast(load_crows_pairs(types))
    usable = minimal_pair_inputs(model.tokenizer, candidates)
    screening = screen_pairs(
        model,
        usable.pairs,
        lambda block: minimal_pair_inputs(model.tokenizer, block),
        n_pairs=n_pairs,
        min_gap=min_gap,
        seed=seed,
        batch_size=batch_size,
    )
    counts = {
        "candidates": len(candidates),
        **{f"dropped_{k}": len(v) for k, v in usable.dropped.items()},
        "usable": len(usable.pairs),
        "screened": screening.n_screened,
        "screened_with_gap": screening.n_with_gap,
        "min_gap_nats": min_gap,
        "used": len(screening.pairs),
    }
    return minimal_pair_inputs(model.tokenizer, screening.pairs), counts


def select_pairs(model, group: str, n_pairs: int | None, min_gap: float, seed: int, batch_size: int):
    """Pairs of one template: same clean/corrupted token length; of the most common length (positions
    line up); screened in a seeded random order until ``n_pairs`` (None = all) have a clean minus corrupted
    metric of at least ``min_gap`` nats (the model shows the stereotype: scores can be normalised).
    Returns (inputs, counts)."""
    candidates = gender_swap_pairs(groups=[group])
    usable = patching_inputs(model.tokenizer, candidates)
    lengths = usable.clean.lengths.tolist()
    modal = Counter(lengths).most_common(1)[0][0]
    aligned = [pair for pair, length in zip(usable.pairs, lengths) if length == modal]
    screening = screen_pairs(
        model,
        aligned,
        lambda block: patching_inputs(model.tokenizer, block),
        n_pairs=n_pairs,
        min_gap=min_gap,
        seed=seed,
        batch_size=batch_size,
    )
    counts = {
        "candidates": len(candidates),
        "dropped_length_mismatch": len(usable.dropped["length_mismatch"]),
        "dropped_same_answer_token": len(usable.dropped["same_answer_token"]),
        "aligned_length_tokens": modal,
        "dropped_other_length": len(usable.pairs) - len(aligned),
        "aligned": len(aligned),
        "screened": screening.n_screened,
        "screened_with_gap": screening.n_with_gap,
        "min_gap_nats": min_gap,
        "used": len(screening.pairs),
    }
    return patching_inputs(model.tokenizer, screening.pairs), counts


def x_labels(result: PatchResult) -> tuple[list[str], str]:
    """Column labels and axis title of a result's heatmap: positions (token labels), heads, or one column
    per (position, head), position-major."""
    axes = result.axes[2:]
    if axes == ("pos",):
        return result.position_labels(), "position (token)"
    if axes == ("head",):
        return result.head_labels(), "head"
    return (
        [f"{position} {head}" for position in result.position_labels() for head in result.head_labels()],
        "position (token), head",
    )


def _pairs_label(config: dict) -> str:
    if config.get("pairs") == "crows-pairs":
        return f"CrowS-Pairs ({', '.join(config['crows_types'] or ['all types'])})"
    return f"template {config['group']}"


def draw(result: Result, target: str, method: str):
    """Heatmap of the pair-mean scores of one target and method of a saved (or fresh) result."""
    entry = result.values["targets"][target]
    mean = np.asarray(entry[f"mean_{method}"], dtype=float)  # JSON null (NaN: padding) -> NaN
    mean = mean.reshape(len(entry["layers"]), -1)
    what = "patched score" if method == "exact" else "attribution estimate"
    title = (
        f"{target} {result.config['direction']}: {what} (1 = clean, 0 = corrupted)<br><sup>"
        f"{result.provenance['model']['name']}, {_pairs_label(result.config)}, mean of {entry['n_pairs']} "
        "pairs</sup>"
    )
    return heatmap(
        mean,
        entry["x_labels"],
        [str(layer) for layer in entry["layers"]],
        title=title,
        x_title=entry["x_title"],
        y_title="layer",
        zmid=0,
    )


def save_figures(result: Result, stem: Path, *, png: bool) -> list[Path]:
    """Every heatmap of a result: ``{stem}_{target}_{exact|attribution}.{html,png}``."""
    return [
        path
        for target in result.values["targets"]
        for method in ("exact", "attribution")
        for path in save_figure(draw(result, target, method), f"{stem}_{target}_{method}", png=png)
    ]


def run(config: Config) -> Path:
    """Select the pairs, patch every target exactly and by attribution; save the result, return its path."""
    set_seed(config.seed)
    model = load_model(config.model, device=config.device)
    if config.pairs == "crows-pairs":
        inputs, counts = select_crows_pairs(
            model, config.crows_types, config.n_pairs, config.min_gap, config.seed, config.batch_size
        )
        print(
            f"crows-pairs: {counts['candidates']} candidate pairs, {counts['usable']} minimal pairs (dropped: "
            f"{counts['dropped_length_mismatch']} of different token lengths, {counts['dropped_not_one_span']} "
            f"not one swapped span, {counts['dropped_no_shared_continuation']} swapped at the end)",
            end="; ",
        )
    else:
        inputs, counts = select_pairs(
            model, config.group, config.n_pairs, config.min_gap, config.seed, config.batch_size
        )
        print(
            f"{config.group}: {counts['candidates']} candidate pairs, {counts['dropped_length_mismatch']} dropped "
            f"(clean and corrupted of different token lengths), {counts['dropped_other_length']} of another "
            f"length than the most common ({counts['aligned_length_tokens']} tokens)",
            end="; ",
        )
    print(
        f"of {counts['screened']} screened, {counts['screened_with_gap']} have clean - corrupted >= "
        f"{config.min_gap} nats; {counts['used']} used"
    )
    metric = inputs.metric()

    values, tensors = {"pairs": counts, "targets": {}}, {}
    direction = cast(Direction, config.direction)
    with cli.executor(config) as executor:
        cells = CellStore(config.out / "cells", {"model": model_key(model)}, executor=executor)
        exacts = {
            target: patch(
                model,
                inputs.clean,
                inputs.corrupted,
                metric,
                target=target,
                direction=direction,
                batch_size=config.batch_size,
                cells=cells,
                progress=f"{target}: exact",
            )
            for target in config.targets
        }
    for target, exact in exacts.items():
        approx = attribution_patch(model, inputs.clean, inputs.corrupted, metric, target=target, direction=direction)
        agree = agreement(exact, approx, k=10)
        labels, x_title = x_labels(exact)
        values["targets"][target] = {
            "agreement": agree,
            "axes": list(exact.axes),
            "layers": exact.layers,
            "x_labels": labels,
            "x_title": x_title,
            "n_pairs": int((~exact.degenerate).sum()),
            "exact_config": exact.config,
            "mean_exact": exact.mean(),
            "mean_attribution": approx.mean(),
        }
        tensors[f"{target}.exact"], tensors[f"{target}.attribution"] = exact.scores, approx.scores
        print(
            f"{target:>10}: {exact.config['n_forwards']} forwards; attribution vs exact: Pearson "
            f"{agree['pearson']:.3f}, top-{agree['k']} overlap {agree['top_k_overlap']:.2f}"
        )
    gap = exact.clean_metric - exact.corrupted_metric
    values["metric"] = {
        "name": METRIC_NAMES[config.pairs],
        "clean_mean": exact.clean_metric.mean(),
        "corrupted_mean": exact.corrupted_metric.mean(),
        "share_clean_above_corrupted": (gap > 0).float().mean(),
        "n_degenerate": int(exact.degenerate.sum()),
    }
    tensors["clean_metric"], tensors["corrupted_metric"] = exact.clean_metric, exact.corrupted_metric
    print(
        f"metric: clean {exact.clean_metric.mean():.2f}, corrupted {exact.corrupted_metric.mean():.2f} nats; "
        f"clean > corrupted in {int((gap > 0).sum())} of {len(gap)} pairs; {int(exact.degenerate.sum())} degenerate"
    )
    recorded = {
        **config.to_dict(),
        "pair_ids": [pair.id for pair in inputs.pairs],
        "position_labels": exact.position_labels(),
        "clean_texts": inputs.clean.texts,
        "corrupted_texts": inputs.corrupted.texts,
        "normalisation": "(patched - corrupted) / (clean - corrupted), both directions",
        "agreement": "lens_bias.patching.agreement on pair-mean effects, k=10",
    }
    result = Result(
        name="patching",
        values=values,
        config=recorded,
        tensors=tensors,
        provenance=collect_provenance(
            model_record=model_record(model).to_dict(), data={config.pairs: fingerprint(inputs.pairs)}, seed=config.seed
        ),
    )
    path = result.save(config.out / config.stem)
    print("wrote", path)
    return path


def report(result: Result, path: Path, config: Config) -> None:
    """Draw the heatmaps of a saved result next to it (the numbers are printed while they are computed)."""
    print("wrote", *save_figures(result, Path(path).with_suffix(""), png=config.png))


def main(argv: list[str] | None = None) -> Result:
    return cli.main(Config, argv, description=__doc__, quick=QUICK, result_name="patching", run=run, report=report)


if __name__ == "__main__":
    cli.run(main)
