"""Where does the model carry a stereotype? Activation patching on term-swap pairs.

``--pairs gender_swap`` (default): pairs come from the project's gender templates
(:func:`lens_bias.data.gender_swap.gender_swap_pairs`): one template (``--group``, default
``occupation-t0``: "The {occupation} walked into the room and"), the clean prompt with a term stereotyped
one way (nurse -> " she"), the corrupted prompt with a term stereotyped the other way (carpenter -> " he").
Metric: logit(clean's stereotyped pronoun) - logit(the other pronoun) at the last prompt token. Kept:
pairs whose clean and corrupted prompts tokenize to the same length (the others are counted as dropped);
among those the pairs of the most common length, so that positions line up across pairs and scores can
be averaged position by position; among those, in a seeded random order, the first ``--n-pairs`` whose
clean metric exceeds the corrupted one by at least ``--min-gap`` nats (>= 0: the model shows the
stereotype there, so normalised scores are well defined; how many of the screened pairs do is reported).

``--pairs crows_pairs``: CrowS-Pairs sentences (``--crows-types``, default all nine types), clean = the more
stereotyping sentence, corrupted = the other, kept where the two differ in one span of tokens of the same
length and share the rest of the sentence after it (:func:`lens_bias.patching.select_pairs`).
Metric: the summed log-probability of that shared continuation. Pairs differ in length and wording, so
positions do not line up across pairs: only whole-layer head targets (``z``, ``k``, ``v``) are averaged.

For each target, exact activation patching (``--direction``, default denoising: clean activations into
the corrupted run; score 1 = clean behaviour restored, 0 = corrupted) and attribution patching, their
agreement (Pearson, top-10 overlap), and heatmaps of the pair-mean scores (layer x position with token
labels, or layer x head). ``--pairs-file``: your own contrast pairs instead, the crows_pairs way. Writes
``{out}/patching.json`` + ``.safetensors`` (per-pair scores), ``patching.items.parquet`` / ``.csv`` and
``{out}/patching_{target}_{exact|attribution}.{html,png}`` (``patching_quick*`` with ``--quick``).

    python -m experiments.patching [--model NAME] [--targets resid_pre attn_out mlp_out z] [--n-pairs 24]
        [--group occupation-t0] [--direction denoising] [--seed 0] [--out figures/patching] [--quick]
    python -m experiments.patching --pairs crows_pairs --targets z [--crows-types race-color gender]
    python -m experiments.patching --replot figures/patching/patching.json
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

from experiments import cli

if TYPE_CHECKING:
    from lens_bias.patching import Direction
    from lens_bias.provenance import Result

# Choices as literals (tested against the library's): the library is imported in functions (--help speed).
TARGETS = ("resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out", "z", "z_pos", "k", "v", "k_pos", "v_pos")
HEAD_TARGETS = ("z", "k", "v")  # whole-layer head targets: the only ones averaged over CrowS-Pairs sentences
GROUPS = tuple(f"occupation-t{i}" for i in range(6)) + ("trait-t0", "trait-t2", "activity-t0")
_CROWS = "age disability gender nationality physical-appearance race-color religion sexual-orientation socioeconomic"
CROWS_TYPES = tuple(_CROWS.split())
DEFAULT_TARGETS = ("resid_pre", "attn_out", "mlp_out", "z")
#: What --quick changes (a smoke run).
QUICK = {"n_pairs": 2, "targets": ["resid_pre", "z"], "stem": "patching_quick"}


@dataclass(frozen=True)
class Config(cli.PairsConfig, cli.SweepConfig):
    """Activation and attribution patching of term-swap pairs (see the module docstring)."""

    targets: tuple[str, ...] = field(
        default=DEFAULT_TARGETS, metadata={"help": "activations patched", "choices": TARGETS}
    )
    n_pairs: int | None = field(default=24, metadata={"help": "pairs kept among those with the gap", "min": 1})
    pairs: str = field(
        default="gender_swap", metadata={"help": "the pair set", "choices": ["gender_swap", "crows_pairs"]}
    )
    group: str = field(
        default="occupation-t0",
        metadata={"help": "gender_swap pairs: the template the pairs come from", "choices": GROUPS},
    )
    crows_types: tuple[str, ...] | None = field(
        default=None, metadata={"help": "crows_pairs: bias types (default all)", "choices": CROWS_TYPES}
    )
    direction: str = field(
        default="denoising",
        metadata={"help": "patch clean into corrupted (denoising) or back", "choices": ["denoising", "noising"]},
    )
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
        from lens_bias.errors import InputError  # inside: --help speed (as every library import here)

        if not self.targets:
            raise InputError("--targets: give at least one target.")
        if (self.pairs == "crows_pairs" or self.pairs_file) and any(t not in HEAD_TARGETS for t in self.targets):
            raise InputError("crows_pairs and --pairs-file sentences do not share positions: use --targets z, k or v.")
        if self.crows_types is not None and not self.crows_types:
            raise InputError("--crows-types: give at least one bias type, or omit the flag for all of them.")
        if not self.stem or Path(self.stem).name != self.stem:
            raise InputError(f"--stem {self.stem!r}: give a file name without folders (the folder is --out).")
        super().__post_init__()


def run(config: Config) -> Path:
    """Select the pairs, patch every target exactly and by attribution; save the result, return its path."""
    from lens_bias.cells import CellStore, model_key
    from lens_bias.data import fingerprint, load_pairs
    from lens_bias.models import load_model, model_record
    from lens_bias.patching import METRIC_NAMES, patch_targets, patching_items, select_pairs
    from lens_bias.provenance import Result, collect_provenance, set_seed

    set_seed(config.seed)
    own = None if config.pairs_file is None else load_pairs(config.pairs_file, config.columns)
    model = load_model(config.model, device=config.device, dtype=config.dtype)
    names = ("group", "crows_types", "n_pairs", "min_gap", "seed", "batch_size")  # flags of the same name
    inputs, counts = select_pairs(model, config.pairs, **{n: getattr(config, n) for n in names}, pairs=own)
    pair_set = config.pairs if own is None else "crows_pairs"  # own pairs are scored the crows_pairs way
    with cli.executor(config) as executor:
        values, tensors, record = patch_targets(
            model,
            inputs,
            config.targets,
            direction=cast("Direction", config.direction),
            metric_name=METRIC_NAMES[pair_set],
            batch_size=config.batch_size,
            cells=CellStore(config.out / "cells", {"model": model_key(model)}, executor=executor),
        )
    provenance = collect_provenance(
        model_record=model_record(model).to_dict(), data={pair_set: fingerprint(inputs.pairs)}, seed=config.seed
    )
    items = patching_items(inputs, values, tensors)
    result = Result("patching", {"pairs": counts, **values}, {**config.to_dict(), **record}, provenance, tensors, items)
    return result.save(config.out / config.stem)


def report(result: Result, path: Path, config: Config) -> None:
    """Print the summary of a saved result and draw its heatmaps next to it."""
    from lens_bias.figures.patching import save_figures, summary

    print(*summary(result), sep="\n")
    print("wrote", path)
    print("wrote", *save_figures(result, Path(path).with_suffix(""), png=config.png))


def main(argv: list[str] | None = None) -> Result:
    return cli.main(Config, argv, description=__doc__, quick=QUICK, result_name="patching", run=run, report=report)


if __name__ == "__main__":
    cli.run(main)
