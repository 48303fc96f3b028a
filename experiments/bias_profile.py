"""How much a model prefers the stereotyped option, per bias type, on held-out StereoSet pairs.

On held-out StereoSet pairs (split by target term) it measures, per bias type (gender, race, religion,
profession), the likelihood preference (mean per-token log P(stereotype) - log P(anti-stereotype) and the
share of pairs preferring the stereotype) and the A/B choice (P(stereotyped option) with the model's
position bias and format mass), all with bootstrap 95% intervals (:mod:`lens_bias.metrics.bias_profile`). Writes
``{out}/bias_profile.json`` (values + config + provenance) and ``{out}/bias_profile.{html,png}``.

    python -m experiments.bias_profile [--model NAME] [--n-stereoset 120] [--quick]
    python -m experiments.bias_profile --replot figures/bias_profile/bias_profile.json
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from experiments import cli
from lens_bias.errors import InputError  # dependency-free (experiments.cli imports it too)

if TYPE_CHECKING:
    from lens_bias.provenance import Result

# The rest of the library is imported inside run / report (not here) so that --help stays fast.
#: StereoSet's bias types (lens_bias.data.stereoset.BIAS_TYPES, a test checks they agree).
STEREOSET_BIAS_TYPES = ("gender", "profession", "race", "religion")


@dataclass(frozen=True)
class Config(cli.RunConfig):
    """One bias profile: which bias types, how many held-out pairs each, how the target terms are split."""

    bias_types: tuple[str, ...] = field(
        default=STEREOSET_BIAS_TYPES,
        metadata={"help": "StereoSet bias types to profile", "choices": STEREOSET_BIAS_TYPES},
    )
    n_stereoset: int | None = field(default=120, metadata={"help": "held-out pairs per bias type", "min": 1})
    test_fraction: float = field(default=0.3, metadata={"help": "share of target terms held out, in (0, 1)"})
    batch_size: int = field(default=16, metadata={"help": "rows per forward pass", "min": 1})
    out: Path = field(default=Path("figures/bias_profile"), metadata={"help": "output folder (results, figures)"})

    def __post_init__(self) -> None:
        if not self.bias_types:
            raise InputError("--bias-types needs at least one bias type.")
        unknown = [t for t in self.bias_types if t not in STEREOSET_BIAS_TYPES]
        if unknown:
            raise InputError(f"Unknown bias types {unknown}: use {', '.join(STEREOSET_BIAS_TYPES)}.")
        if not 0.0 < self.test_fraction < 1.0:
            raise InputError(f"--test-fraction must be in (0, 1), got {self.test_fraction}.")
        super().__post_init__()


QUICK = {"n_stereoset": 24}


def run(config: Config) -> Path:
    """Profile every bias type of ``config``; save the result and return its JSON path."""
    from lens_bias.metrics.bias_profile import bias_profile
    from lens_bias.models import load_model, model_record
    from lens_bias.prompts import template_for
    from lens_bias.provenance import Result, collect_provenance, set_seed

    set_seed(config.seed)
    model = load_model(config.model, device=config.device, dtype=config.dtype)
    template = template_for(model)
    seed, batch_size = config.seed, config.batch_size
    per_type, fingerprints, items = bias_profile(
        model, template, config.bias_types, config.n_stereoset, config.test_fraction, batch_size=batch_size, seed=seed
    )
    recorded = {
        **config.to_dict(),
        "template": template.describe(model.tokenizer),
        "split": "stereoset dev, test side of split_by_target",
        "likelihood_by": "mean per-token log-prob",
        "ci": "bootstrap 95%",
    }
    result = Result(
        name="bias_profile",
        values={"per_bias_type": per_type},
        config=recorded,
        provenance=collect_provenance(model_record=model_record(model).to_dict(), data=fingerprints, seed=config.seed),
        items=items,
    )
    return result.save(config.out / "bias_profile")


def summarize(result: Result) -> str:
    """The headline numbers of a saved result, as a run prints them (experiments.figure_index reads them too)."""
    from lens_bias.metrics.bias_profile import summarize as summary

    return summary(result.values)


def report(result: Result, path: Path, config: Config) -> None:
    """Print the per-bias-type summary and draw the figure next to the saved result."""
    from lens_bias.figures.bias_profile import draw
    from lens_bias.figures.primitives import save_figure

    print(summarize(result))
    print("wrote", path, *save_figure(draw(result), path.with_suffix(""), png=config.png))


def main(argv: list[str] | None = None) -> Result:
    return cli.main(Config, argv, description=__doc__, quick=QUICK, result_name="bias_profile", run=run, report=report)


if __name__ == "__main__":
    cli.run(main)
