"""Cosine-similarity maps between bias-type steering vectors, within one model or across two checkpoints.

Within a model (``--model``): per layer, the bias x bias cosine matrix of the StereoSet bias-type vectors
(and the gender prompt-set vector), each vector's split-half reliability, a shuffled-label null, the mean
off-diagonal similarity with a bootstrap interval, and a layer x layer map per vector.
Across checkpoints (``--base`` and ``--chat``, same architecture, processed identically): per layer the
similarity of each bias vector with itself across the two, and the mean off-diagonal similarity in each
with intervals and their difference: "RLHF makes different biases' representations more similar"
becomes a number with an interval.

Layers: ``--layers``, or every ``--layer-step``-th layer from 0 (default every layer; ``--quick``: every third).

    python -m experiments.similarity [--model NAME] [--bias-types gender race] [--layers 0 6 12] [--quick]
    python -m experiments.similarity --base llama-2-7b --chat llama-2-7b-chat
    python -m experiments.similarity --pairs-file examples/pairs.csv   # your own pairs, a vector per bias_type
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

from experiments import cli

if TYPE_CHECKING:
    from lens_bias.provenance import Result
    from lens_bias.steering.build import Method
    from lens_bias.steering.contrast import SentenceReadout

#: The named contrasts whose pairs are raw text (read without a chat template): the ones a similarity map
#: compares; steering's --bias-types takes the same names. Literals (tested against the library): the library
#: is imported inside run / report, so that --help stays fast.
BIAS_TYPES = ("gender", "profession", "race", "religion", "gender_prompts")
QUICK = {"n_pairs": 24, "layer_step": 3}


@dataclass(frozen=True)
class Config(cli.PairsConfig, cli.RunConfig):
    """The bias types, layers and vector recipe of one similarity study, and the checkpoints it compares."""

    base: str | None = field(default=None, metadata={"help": "first checkpoint (e.g. llama-2-7b) for a comparison"})
    chat: str | None = field(default=None, metadata={"help": "second checkpoint (e.g. llama-2-7b-chat)"})
    bias_types: tuple[str, ...] = field(
        default=BIAS_TYPES, metadata={"help": "named bias contrasts to compare", "choices": BIAS_TYPES}
    )
    layers: tuple[int, ...] | None = field(
        default=None, metadata={"help": "layers (omit for every --layer-step-th layer)"}
    )
    layer_step: int = field(
        default=1, metadata={"help": "without --layers: every k-th layer from 0 (--quick: 3)", "min": 1}
    )
    n_pairs: int | None = field(default=100, metadata={"help": "training pairs per contrast", "min": 1})
    readout: str = field(
        default="mean_from_difference",
        metadata={"choices": ["last", "mean_from_difference"], "help": "how a sentence's activation is read"},
    )
    method: str = field(
        default="mean_difference",
        metadata={"choices": ["mean_difference", "first_pc"], "help": "how the vector is built from the pairs"},
    )
    batch_size: int = field(default=16, metadata={"help": "rows per forward pass", "min": 1})
    out: Path = field(default=Path("figures/similarity"), metadata={"help": "output folder (results, figures)"})

    def __post_init__(self) -> None:
        from lens_bias.errors import InputError  # inside: --help speed (as every library import here)

        if (self.base is None) != (self.chat is None):
            raise InputError("Give both --base and --chat for a cross-checkpoint comparison (or neither).")
        if not self.bias_types:
            raise InputError("--bias-types needs at least one bias type.")
        unknown = [name for name in self.bias_types if name not in BIAS_TYPES]
        if unknown:
            raise InputError(f"Unknown bias types {unknown}: use {', '.join(BIAS_TYPES)}.")
        if self.layers is not None and not self.layers:
            raise InputError("--layers needs at least one layer (omit it for every layer).")
        super().__post_init__()

    @property
    def checkpoints(self) -> list[str]:
        """The models to load: base and chat for a comparison, else the one model."""
        return [self.base, self.chat] if self.base is not None and self.chat is not None else [self.model]


def run(config: Config) -> Path:
    """Build the vectors of every checkpoint, compare them; save the result and the vectors, return the
    result's JSON path."""
    from lens_bias.provenance import Result, collect_provenance, set_seed
    from lens_bias.similarity import checkpoint_vectors, compare_checkpoints, within_model

    set_seed(config.seed)
    built = checkpoint_vectors(
        config.checkpoints,
        config.bias_types,
        layers=config.layers,
        layer_step=config.layer_step,
        n_pairs=config.n_pairs,
        readout=cast("SentenceReadout", config.readout),
        method=cast("Method", config.method),
        device=config.device,
        dtype=config.dtype,
        batch_size=config.batch_size,
        seed=config.seed,
        pairs_file=config.pairs_file,
        columns=config.columns,
    )
    last = built[config.checkpoints[-1]]
    values = {"within": within_model(last.vectors, last.activations, seed=config.seed)}
    if config.base is not None and config.chat is not None:
        base, chat = built[config.base], built[config.chat]
        comparison = compare_checkpoints(
            base.vectors, chat.vectors, base.activations, chat.activations, seed=config.seed
        )
        values["cross"] = comparison.to_dict()
    data = {name: described["train_fingerprint"] for name, described in last.data.items()}
    provenance = collect_provenance(model_record=last.model_record, seed=config.seed, data=data)
    provenance |= {"models": {name: b.model_record for name, b in built.items()}, "contrasts": last.data}
    items = [row for name, b in built.items() for row in b.items(name)]
    path = Result("similarity", values, config.to_dict(), provenance, items=items).save(config.out / "similarity")
    for name, vector in last.vectors.items():
        vector.save(config.out / "vectors" / name)
    return path


def summarize(result: Result) -> str:
    """The headline numbers of a saved result (what a run prints): off-diagonal cosines, nulls, reliabilities."""
    from lens_bias.figures.similarity import summary

    return summary(result)


def report(result: Result, path: Path, config: Config) -> None:
    """Print the headline numbers and draw every figure next to the saved result."""
    from lens_bias.figures.primitives import save_figures
    from lens_bias.figures.similarity import draw

    print(summarize(result))
    print("wrote", path)
    save_figures(draw(result), path.parent, png=config.png)


def main(argv: list[str] | None = None) -> Result:
    return cli.main(Config, argv, description=__doc__, quick=QUICK, result_name="similarity", run=run, report=report)


if __name__ == "__main__":
    cli.run(main)
