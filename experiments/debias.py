"""The debiasing scoreboard: which intervention removes the most bias for the least damage, on one model.

Fits (or reuses) every selected method on its own training data, then scores the model without
intervention and under each method on the same held-out items (:mod:`lens_bias.debias.scoreboard`):

* bias: StereoSet (only the target terms the steering vectors never saw), CrowS-Pairs, BBQ (both
  contexts), each with the distance to its ideal that the method closes, with a paired interval;
* retention: neutral-text log-probability, BBQ disambiguated accuracy, StereoSet LMS and factual
  knowledge (:mod:`lens_bias.side_effects`), each with its paired change.

Methods (``--methods``): ``steering`` (the best debiasing vector of each ``--steer-bias-types``),
``redteam`` (bias vector + negative refusal vector, the steering study's stress row), ``alignez-svd`` and
``alignez-ccs`` (self-alignment by representation editing), ``heads`` (BiasScope's selected heads
ablated), ``lora`` (the SR_LLM-recipe LoRA fine-tune, a merged model folder). Fitted artefacts live in
``{out}/artefacts/`` and are reused while their settings hold; scoring chunks are resumable cells in
``{out}/cells/``. Writes ``{out}/debias.json`` (values, config, provenance), ``{out}/debias.md`` and one
Pareto figure per bias statistic.

    python -m experiments.debias --quick
    python -m experiments.debias --methods steering alignez-svd --steer-bias-types gender
    python -m experiments.debias --replot figures/debias/debias.json
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from transformer_lens import HookedTransformer

from experiments import cli
from lens_bias.audit.base import Measure
from lens_bias.audit.bbq import BBQMeasure
from lens_bias.audit.crows_pairs import CrowsPairsMeasure
from lens_bias.audit.stereoset import StereoSetMeasure
from lens_bias.data.contrast_splits import contrast_split
from lens_bias.data.stereoset import BIAS_TYPES
from lens_bias.debias import scoreboard
from lens_bias.debias.methods import (
    STEER_MULTIPLIERS,
    Candidate,
    alignez_candidate,
    finetune_candidate,
    head_ablation_candidate,
    redteam_candidate,
    steering_candidate,
)
from lens_bias.errors import InputError
from lens_bias.figures.primitives import save_figures
from lens_bias.files import write_text_atomic
from lens_bias.models import check_layers, load_model, model_record
from lens_bias.provenance import Result, collect_provenance, set_seed
from lens_bias.side_effects import SideEffectConfig

METHODS = ("steering", "redteam", "alignez-svd", "alignez-ccs", "heads", "lora")


@dataclass(frozen=True)
class Config(cli.SweepConfig):
    """Which methods, their settings, and the held-out items they are scored on."""

    methods: tuple[str, ...] = field(default=METHODS, metadata={"help": "methods to compare", "choices": METHODS})
    steer_bias_types: tuple[str, ...] = field(
        default=BIAS_TYPES, metadata={"help": "a debiasing steering vector per bias type", "choices": BIAS_TYPES}
    )
    redteam_bias_type: str = field(
        default="gender", metadata={"help": "the bias vector of the red-teaming row", "choices": BIAS_TYPES}
    )
    layers: tuple[int, ...] = field(default=(4, 8, 12, 16, 20), metadata={"help": "steering: candidate layers"})
    steer_multipliers: tuple[float, ...] = field(
        default=STEER_MULTIPLIERS,
        metadata={"help": "steering: raw multipliers (non-zero) the debiasing multiplier is chosen from"},
    )
    n_pairs: int = field(default=100, metadata={"help": "steering: training pairs per vector", "min": 2})
    heads: Path | None = field(
        default=None,
        metadata={"help": "heads: a saved BiasScope selection (selected_heads.json); default: fitted in the run"},
    )
    biasscope_seeds: tuple[int, ...] = field(default=(0, 1, 2), metadata={"help": "heads: one injection per seed"})
    biasscope_steps: int = field(default=100, metadata={"help": "heads: training steps per injection", "min": 1})
    k: int = field(default=5, metadata={"help": "heads: top-k heads per injection run", "min": 1})
    alignez_layers: tuple[int, ...] | None = field(
        default=None, metadata={"help": "alignez: candidate layers of the directions (default every layer)"}
    )
    alignez_strength: float = field(
        default=10.0, metadata={"help": "alignez: boost strength w_s (1 barely moves the embedded model)"}
    )
    alignez_top_layers: int = field(default=5, metadata={"help": "alignez: layers edited (most aligned)", "min": 1})
    alignez_tokens: int = field(default=64, metadata={"help": "alignez: tokens per self-generated answer", "min": 1})
    lora_data: Path | None = field(
        default=None, metadata={"help": "lora: a CSV of biased_text,debiased_text pairs (default: the project's)"}
    )
    lora_max_steps: int | None = field(
        default=None, metadata={"help": "lora: stop after this many steps (default: one epoch)", "min": 1}
    )
    head_scale: float = field(default=0.0, metadata={"help": "heads: scale of the selected heads (0 = ablation)"})
    n_stereoset: int | None = field(
        default=400, metadata={"help": "StereoSet items of the held-out targets (all: every one)", "min": 1}
    )
    n_crows_pairs: int | None = field(default=400, metadata={"help": "CrowS-Pairs pairs (all: 1,508)", "min": 1})
    n_bbq: int | None = field(default=40, metadata={"help": "BBQ questions per category (both contexts)", "min": 1})
    n_neutral: int | None = field(default=None, metadata={"help": "retention: neutral sentences (all: 110)", "min": 2})
    n_side_bbq: int = field(default=150, metadata={"help": "retention: disambiguated BBQ questions", "min": 2})
    n_lms: int = field(default=150, metadata={"help": "retention: StereoSet items for the LMS", "min": 2})
    n_knowledge: int | None = field(default=None, metadata={"help": "retention: knowledge questions", "min": 2})
    pareto_retention: str = field(
        default="knowledge_accuracy", metadata={"help": "the retention readout on the Pareto figures' y axis"}
    )
    out: Path = field(default=Path("figures/debias"), metadata={"help": "output folder"})

    def __post_init__(self) -> None:
        if not self.methods:
            raise InputError(f"--methods needs at least one of {', '.join(METHODS)}.")
        if "steering" in self.methods and not self.steer_bias_types:
            raise InputError("--steer-bias-types is empty: give a bias type or drop steering from --methods.")
        if 0 in self.steer_multipliers or not self.steer_multipliers:
            raise InputError(
                f"--steer-multipliers must be non-zero (the unsteered model is the baseline), got "
                f"{list(self.steer_multipliers)}."
            )
        if self.lora_data is not None and not Path(self.lora_data).is_file():
            raise InputError(f"--lora-data {self.lora_data}: no such file; give a CSV with biased_text,debiased_text.")
        if self.heads is not None and not Path(self.heads).is_file():
            raise InputError(
                f"--heads {self.heads}: no such file. Run `python -m experiments.biasscope` first (it writes "
                "figures/biasscope/selected_heads.json), or leave --heads out to fit the heads in the run."
            )
        super().__post_init__()

    def retention(self) -> SideEffectConfig:
        return SideEffectConfig(
            n_neutral=self.n_neutral,
            n_bbq=self.n_side_bbq,
            n_stereoset=self.n_lms,
            n_knowledge=self.n_knowledge,
            seed=self.seed,
            batch_size=self.batch_size,
        )


QUICK = {
    "methods": ("steering", "redteam"),
    "steer_bias_types": ("gender",),
    "layers": (8, 16),
    "n_pairs": 24,
    "n_stereoset": 40,
    "n_crows_pairs": 40,
    "n_bbq": 2,
    "n_neutral": 16,
    "n_side_bbq": 16,
    "n_lms": 16,
    "n_knowledge": 24,
}


def held_out_targets(seed: int) -> list[str]:
    """The StereoSet target terms no steering vector trains on: the test side of every bias type's split."""
    return sorted({pair.target for b in BIAS_TYPES for pair in contrast_split(b, seed=seed).test})


def candidates(config: Config, model: HookedTransformer) -> list[Candidate]:
    """Every selected method, fitted or reused from ``{out}/artefacts``."""
    folder = config.out / "artefacts"
    out: list[Candidate] = []
    if "steering" in config.methods:
        for bias_type in config.steer_bias_types:
            out.append(
                steering_candidate(
                    model,
                    bias_type,
                    folder,
                    layers=config.layers,
                    multipliers=config.steer_multipliers,
                    n_pairs=config.n_pairs,
                    seed=config.seed,
                    batch_size=config.batch_size,
                    progress=True,
                )
            )
    if "redteam" in config.methods:
        out.append(
            redteam_candidate(
                model,
                config.redteam_bias_type,
                folder,
                layers=config.layers,
                n_pairs=config.n_pairs,
                seed=config.seed,
                batch_size=config.batch_size,
                progress=True,
            )
        )
    for method in ("svd", "ccs"):
        if f"alignez-{method}" in config.methods:
            out.append(
                alignez_candidate(
                    model,
                    folder,
                    method=method,
                    layers=config.alignez_layers,
                    strength=config.alignez_strength,
                    top_layers=config.alignez_top_layers,
                    max_new_tokens=config.alignez_tokens,
                    seed=config.seed,
                    batch_size=config.batch_size,
                    progress=True,
                )
            )
    if "heads" in config.methods:
        out.append(
            head_ablation_candidate(
                model,
                folder,
                heads_file=config.heads,
                seeds=config.biasscope_seeds,
                steps=config.biasscope_steps,
                k=config.k,
                scale=config.head_scale,
                batch_size=config.batch_size,
                progress=True,
            )
        )
    if "lora" in config.methods:
        out.append(
            finetune_candidate(
                config.model,
                folder,
                data=config.lora_data,
                max_steps=config.lora_max_steps,
                seed=config.seed,
                device=config.device,
                progress=True,
            )
        )
    return out


def run(config: Config) -> Path:
    """Fit or reuse every method, score them all against the baseline, save the result."""
    set_seed(config.seed)
    model = load_model(config.model, device=config.device)
    check_layers(model, config.layers)
    measures: list[Measure] = [
        StereoSetMeasure(n=config.n_stereoset, targets=held_out_targets(config.seed), seed=config.seed),
        CrowsPairsMeasure(n=config.n_crows_pairs, seed=config.seed),
        BBQMeasure(n=config.n_bbq, seed=config.seed),
    ]
    chosen = candidates(config, model)
    with cli.executor(config) as executor:
        values = scoreboard.evaluate(
            model,
            chosen,
            measures,
            config.retention(),
            cells=config.out / "cells",
            seed=config.seed,
            batch_size=config.batch_size,
            progress=True,
            executor=executor,
        )
    result = Result(
        name="debias",
        values=values,
        config={**config.to_dict(), "retention": dataclasses.asdict(config.retention())},
        provenance=collect_provenance(
            model_record=model_record(model).to_dict(),
            data={m.name: m.describe()["data"] for m in measures},
            seed=config.seed,
        ),
    )
    return result.save(config.out / "debias")


def report(result: Result, path: Path, config: Config) -> None:
    """Print and write the scoreboard's tables; draw the Pareto figures from the saved result."""
    table = scoreboard.markdown_table(result.values)
    write_text_atomic(
        path.with_name("debias.md"), f"# Debiasing scoreboard of {result.provenance['model']['name']}\n\n{table}"
    )
    print(table)
    figures = scoreboard.figures(result.values, retention=result.config["pareto_retention"])
    print("wrote", path, path.with_name("debias.md"), *save_figures(figures, path.parent, png=config.png))


def main(argv: list[str] | None = None) -> Result:
    return cli.main(Config, argv, description=__doc__, quick=QUICK, result_name="debias", run=run, report=report)


if __name__ == "__main__":
    cli.run(main)
