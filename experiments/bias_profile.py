"""How much a model prefers the stereotyped option, per bias type, on held-out StereoSet pairs.

On held-out StereoSet pairs (split by target term) it measures, per bias type (gender, race, religion,
profession), the likelihood preference (mean per-token log P(stereotype) - log P(anti-stereotype) and the
share of pairs preferring the stereotype) and the A/B choice (P(stereotyped option) with the model's
position bias and format mass), all with bootstrap 95% intervals. Writes
``{out}/bias_profile.json`` (values + config + provenance) and ``{out}/bias_profile.{html,png}``.

    python -m experiments.bias_profile [--model NAME] [--n-pairs 120] [--quick]
    python -m experiments.bias_profile --replot figures/bias_profile/bias_profile.json
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from experiments import cli
from lens_bias.data.records import ContrastPair, fingerprint, split_by_target, to_ab_items
from lens_bias.data.sampling import sample
from lens_bias.data.stereoset import BIAS_TYPES as STEREOSET_BIAS_TYPES
from lens_bias.data.stereoset import load_stereoset, stereoset_pairs
from lens_bias.errors import InputError
from lens_bias.figures.primitives import bars_with_ci, save_figure
from lens_bias.metrics import ab_preference, likelihood_preference
from lens_bias.models import load_model, model_record
from lens_bias.prompts import template_for
from lens_bias.provenance import Result, collect_provenance, set_seed
from lens_bias.stats import Estimate


@dataclass(frozen=True)
class Config(cli.RunConfig):
    """One bias profile: which bias types, how many held-out pairs each, how the target terms are split."""

    bias_types: tuple[str, ...] = field(
        default=tuple(STEREOSET_BIAS_TYPES),
        metadata={"help": "StereoSet bias types to profile", "choices": STEREOSET_BIAS_TYPES},
    )
    n_pairs: int | None = field(default=120, metadata={"help": "held-out pairs per bias type", "min": 1})
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


QUICK = {"n_pairs": 24}


def held_out_pairs(bias_type: str, n_pairs: int | None, test_fraction: float, seed: int) -> list[ContrastPair]:
    """Held-out StereoSet pairs (intra- and intersentence) of one bias type, split by target term; ``n_pairs``
    of them drawn with ``seed`` (sorted by id), or all for None."""
    _, test = split_by_target(stereoset_pairs(load_stereoset(bias_types=[bias_type])), test_fraction, seed)
    return sample(test, n_pairs, seed, key=lambda pair: pair.id)


def draw(result: Result):
    """The figure of a saved bias-profile result."""
    types = list(result.values["per_bias_type"])
    per = result.values["per_bias_type"]
    series = {
        "likelihood: share preferring stereotype": [
            Estimate.from_dict(per[t]["likelihood"]["share_positive"]) for t in types
        ],
        "A/B: P(stereotyped option)": [Estimate.from_dict(per[t]["ab"]["p_positive"]) for t in types],
        "A/B: position bias P(A)": [Estimate.from_dict(per[t]["ab"]["position_bias"]) for t in types],
    }
    model = result.provenance["model"]["name"]
    return bars_with_ci(
        types,
        series,
        title=f"Preference for the stereotype on held-out StereoSet pairs ({model})",
        y_title="share / probability (0.5 = no preference)",
        reference_line=0.5,
    )


def summarize(result: Result) -> str:
    """One line per bias type: likelihood share and mean difference, A/B choice, position bias, format mass."""
    lines = []
    for bias_type, entry in result.values["per_bias_type"].items():
        likelihood = {k: Estimate.from_dict(v) for k, v in entry["likelihood"].items() if isinstance(v, dict)}
        ab = {k: Estimate.from_dict(v) for k, v in entry["ab"].items() if isinstance(v, dict)}
        lines.append(
            f"{bias_type:>10}: likelihood share {likelihood['share_positive']}, mean diff "
            f"{likelihood['mean_logprob_diff']} | A/B P(stereo) {ab['p_positive']}, position bias "
            f"{ab['position_bias']}, format mass {ab['format_mass']}"
        )
    return "\n".join(lines)


def run(config: Config) -> Path:
    """Profile every bias type of ``config``; save the result and return its JSON path."""
    set_seed(config.seed)
    model = load_model(config.model, device=config.device)
    template = template_for(model)
    per_type, fingerprints = {}, {}
    for bias_type in config.bias_types:
        pairs = held_out_pairs(bias_type, config.n_pairs, config.test_fraction, config.seed)
        fingerprints[f"stereoset-{bias_type}-test"] = fingerprint(pairs)
        likelihood = likelihood_preference(
            model, pairs, batch_size=config.batch_size, seed=config.seed, progress=f"{bias_type}: likelihood"
        )
        ab = ab_preference(
            model,
            to_ab_items(pairs, seed=config.seed),
            template,
            batch_size=config.batch_size,
            seed=config.seed,
            progress=f"{bias_type}: A/B",
        )
        per_type[bias_type] = {"likelihood": likelihood.to_dict(), "ab": ab.to_dict()}
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
    )
    return result.save(config.out / "bias_profile")


def report(result: Result, path: Path, config: Config) -> None:
    """Print the per-bias-type summary and draw the figure next to the saved result."""
    print(summarize(result))
    print("wrote", path, *save_figure(draw(result), path.with_suffix(""), png=config.png))


def main(argv: list[str] | None = None) -> Result:
    return cli.main(Config, argv, description=__doc__, quick=QUICK, result_name="bias_profile", run=run, report=report)


if __name__ == "__main__":
    cli.run(main)
