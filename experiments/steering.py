"""The bias/refusal steering study (contrastive activation addition), on any loaded model.

Per bias contrast (StereoSet gender/race/religion/profession, the project's gender prompt set) and a refusal
contrast, on training pairs split by target term: a steering vector per layer (``--method``); held-out
separability per layer -> the default layer (PCA there); the sign fixed by measurement on training pairs; bias
under steering on held-out pairs for every layer x multiplier (per-token mean log P(stereotype) - log P(anti),
share preferring the stereotype; the A/B choice at the default layer); refusal propensity of held-out harmful
and benign requests under the refusal vector, bias vs refusal and their correlation; the fluency cost on
neutral text; open-ended generations scored offline (refusal phrases, gendered words in occupation stories).
The study is :func:`lens_bias.steering_study.run_study`. Writes ``{out}/steering.json``, each held-out pair's
score per layer x multiplier (``steering.items.parquet`` / ``.csv``), the vectors, each
vector at its chosen layer and largest multiplier as a saved intervention (``{out}/interventions/{name}.json``,
for ``experiments.side_effects``) and figures to ``{out}/``.

    python -m experiments.steering [--model NAME] [--quick] [--pairs-file examples/pairs.csv]   # your own pairs
    python -m experiments.steering --replot figures/steering/steering.json
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

from experiments import cli
from lens_bias.errors import InputError  # dependency-free (experiments.cli imports it too)

if TYPE_CHECKING:
    from lens_bias.provenance import Result

# The rest of the library is imported inside run / report (not here) so that --help stays fast.
BIAS_CONTRASTS = ("gender", "race", "religion", "profession", "gender_prompts")
READOUTS = ("mean_from_difference", "last")


@dataclass(frozen=True)
class Config(cli.PairsConfig, cli.SweepConfig):
    """The steering study's settings (see the module docstring for what each step measures)."""

    bias_types: tuple[str, ...] = field(
        default=BIAS_CONTRASTS, metadata={"choices": BIAS_CONTRASTS, "help": "bias contrasts to steer"}
    )
    layers: tuple[int, ...] = field(default=(4, 8, 12, 16, 20), metadata={"help": "the sweep layers"})
    # ints, as before the config: a multiplier is recorded as given (-4, not -4.0)
    multipliers: tuple[float, ...] = field(
        default=(-4, -2, 0, 2, 4),
        metadata={"help": "raw multipliers for the bias vectors (relative ones are reported); must include 0"},
    )
    refusal_multipliers: tuple[float, ...] = field(
        default=(-0.5, -0.25, 0, 0.25, 0.5), metadata={"help": "raw multipliers for the refusal vector; must include 0"}
    )
    method: str = field(
        default="mean_difference",
        metadata={"help": "the bias vectors' direction method, by registered name (lens_bias.steering.methods)"},
    )
    readout: str = field(
        default="mean_from_difference",
        metadata={
            "choices": READOUTS,
            "help": "where sentence contrasts are read: averaged from the first differing token (default; ~5x "
            "larger, steerable vectors on the embedded model) or the last token",
        },
    )
    normalize: bool = field(
        default=True,
        metadata={
            "help": "keep each bias vector's own norm (default: rescale every bias vector to the mean norm across "
            "bias types at each layer, as contrastive activation addition does, so a multiplier means the "
            "same added norm for every bias type)",
        },
    )
    n_pairs: int = field(default=100, metadata={"help": "training pairs per contrast", "min": 1})
    n_test: int = field(default=40, metadata={"help": "held-out pairs / requests per contrast", "min": 1})
    n_neutral: int = field(default=40, metadata={"help": "neutral texts for the fluency check", "min": 1})
    n_generations: int = field(default=16, metadata={"help": "prompts per generation setting", "min": 1})
    max_new_tokens: int = field(default=40, metadata={"help": "tokens per generation", "min": 1})
    out: Path = Path("figures/steering")

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("bias_types", "layers"):
            if not getattr(self, name):
                raise InputError(f"--{name.replace('_', '-')} is empty: give at least one value.")
        unknown = [b for b in self.bias_types if b not in BIAS_CONTRASTS]
        if unknown:
            raise InputError(f"--bias-types {' '.join(unknown)}: unknown; choose from {', '.join(BIAS_CONTRASTS)}.")
        if self.readout not in READOUTS:
            raise InputError(f"--readout {self.readout}: unknown; choose from {', '.join(READOUTS)}.")
        for name in ("multipliers", "refusal_multipliers"):
            if 0 not in getattr(self, name):
                raise InputError(f"--{name.replace('_', '-')} must include 0 (the unsteered baseline).")


#: The defaults --quick changes (a smoke run in under 2 minutes on 2 CPU cores).
QUICK = {
    "bias_types": ["gender"],
    "layers": [12],
    "multipliers": [-4, 0, 4],
    "refusal_multipliers": [-0.5, 0, 0.5],
    "n_pairs": 32,
    "n_test": 8,
    "n_neutral": 8,
    "n_generations": 1,
    "max_new_tokens": 12,
}


def run(config: Config) -> Path:
    """The study; saves the result, the vectors and the interventions; returns the result file."""
    from lens_bias.cells import CellStore, model_key
    from lens_bias.models import check_layers, load_model
    from lens_bias.provenance import set_seed
    from lens_bias.steering.methods import vector_method
    from lens_bias.steering_study import StudySettings, run_study, save_study

    vector_method(config.method)  # an unknown method fails before the model loads
    set_seed(config.seed)
    model = load_model(config.model, device=config.device, dtype=config.dtype)
    check_layers(model, config.layers)  # before the first forward pass
    settings = StudySettings(**{f.name: getattr(config, f.name) for f in fields(StudySettings)})
    with cli.executor(config) as executor:
        cells = CellStore(config.out / "cells", {"model": model_key(model), "seed": config.seed}, executor=executor)
        path = save_study(model, run_study(model, settings, cells), settings, config.to_dict(), config.out)
    print("wrote", path)
    return path


def summarize(result: Result) -> str:
    """The headline numbers of a saved result, as a run prints them (experiments.figure_index reads them too)."""
    from lens_bias.steering_study import summarize as summary

    return summary(result.values)


def report(result: Result, path: Path, config: Config) -> None:
    """Print the summary and draw the figures of a saved result (a run and ``--replot`` alike)."""
    from lens_bias.figures.primitives import save_figures
    from lens_bias.figures.steering import draw

    print(summarize(result))
    save_figures(draw(result), path.parent, png=config.png)


def main(argv: list[str] | None = None) -> Result:
    return cli.main(Config, argv, description=__doc__, quick=QUICK, result_name="steering", run=run, report=report)


if __name__ == "__main__":
    cli.run(main)
