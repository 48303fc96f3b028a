"""The debiasing scoreboard: which intervention removes the most bias for the least damage, on one model.

Fits (or reuses, from ``{out}/artefacts/``) every method of ``--methods``, registered names of
:mod:`lens_bias.debias.methods` (``steering`` per ``--steer-bias-types``, ``redteam``, ``alignez_svd``,
``alignez_ccs``, ``heads``, ``lora``, ``circuit_edges``), each set by its flags; then scores the model without
intervention and under each method on the same held-out items (:mod:`lens_bias.debias.scoreboard`): bias removed
(StereoSet, CrowS-Pairs, BBQ) and capability retained, with paired intervals. Writes ``{out}/debias.json``,
``debias.md`` and one Pareto figure per bias statistic (:mod:`lens_bias.figures.debias`).

    python -m experiments.debias --quick
    python -m experiments.debias --methods steering alignez_svd --steer-bias-types gender
    python -m experiments.debias --replot figures/debias/debias.json
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from experiments import cli

if TYPE_CHECKING:
    from lens_bias.debias.methods import MethodConfig
    from lens_bias.provenance import Result

# The library is imported inside the functions: `--help` stays fast.
BIAS_TYPES = ("gender", "profession", "race", "religion")
METHODS = ("steering", "redteam", "alignez_svd", "alignez_ccs", "heads", "lora")


@dataclass(frozen=True)
class Config(cli.SweepConfig):
    """Which methods, their settings, and the held-out items they are scored on."""

    methods: tuple[str, ...] = field(default=METHODS, metadata={"help": "registered debiasing methods to compare"})
    steer_bias_types: tuple[str, ...] = field(default=BIAS_TYPES, metadata={"help": "steering: a vector per bias type"})
    redteam_bias_type: str = field(default="gender", metadata={"help": "redteam: the bias vector's bias type"})
    layers: tuple[int, ...] = field(default=(4, 8, 12, 16, 20), metadata={"help": "steering: candidate layers"})
    steer_multipliers: tuple[float, ...] = field(
        default=(-8.0, -4.0, -2.0, -1.0, 1.0, 2.0, 4.0, 8.0),
        metadata={"help": "steering: raw multipliers (non-zero) the debiasing multiplier is chosen from"},
    )
    n_pairs: int = field(default=100, metadata={"help": "steering: training pairs per vector", "min": 2})
    heads: Path | None = field(default=None, metadata={"help": "heads: a BiasScope selected_heads.json (default: fit)"})
    biasscope_seeds: tuple[int, ...] = field(default=(0, 1, 2), metadata={"help": "heads: one injection per seed"})
    biasscope_steps: int = field(default=100, metadata={"help": "heads: training steps per injection", "min": 1})
    k: int = field(default=5, metadata={"help": "heads: top-k heads per injection run", "min": 1})
    head_scale: float = field(default=0.0, metadata={"help": "heads: scale of the selected heads (0 = ablation)"})
    alignez_layers: tuple[int, ...] | None = field(default=None, metadata={"help": "alignez: layers (default all)"})
    alignez_strength: float = field(default=10.0, metadata={"help": "alignez: boost strength w_s"})
    alignez_top_layers: int = field(default=5, metadata={"help": "alignez: layers edited (most aligned)", "min": 1})
    alignez_tokens: int = field(default=64, metadata={"help": "alignez: tokens per self-generated answer", "min": 1})
    circuit_contrast: str = field(default="gender_swap", metadata={"help": "circuit_edges: the bias's contrast"})
    circuit_control: str | None = field(
        default="gender_definitional", metadata={"help": "circuit_edges: a contrast whose top edges stay (or none)"}
    )
    circuit_control_edges: int = field(default=1000, metadata={"help": "circuit_edges: the control's edges", "min": 0})
    circuit_k: int = field(default=100, metadata={"help": "circuit_edges: edges ablated", "min": 1})
    lora_data: Path | None = field(default=None, metadata={"help": "lora: a CSV of biased_text,debiased_text"})
    lora_max_steps: int | None = field(default=None, metadata={"help": "lora: steps (all: one epoch)", "min": 1})
    n_stereoset: int | None = field(default=400, metadata={"help": "StereoSet items of held-out targets", "min": 1})
    n_crows_pairs: int | None = field(default=400, metadata={"help": "CrowS-Pairs pairs (all: 1,508)", "min": 1})
    n_bbq: int | None = field(default=40, metadata={"help": "BBQ questions per category (both contexts)", "min": 1})
    n_neutral: int | None = field(default=None, metadata={"help": "retention: neutral sentences (all: 110)", "min": 2})
    n_bbq_disambig: int = field(default=150, metadata={"help": "retention: disambiguated BBQ questions", "min": 2})
    n_lms: int = field(default=150, metadata={"help": "retention: StereoSet items for the LMS", "min": 2})
    n_knowledge: int | None = field(default=None, metadata={"help": "retention: knowledge questions", "min": 2})
    pareto_retention: str = field(default="knowledge_accuracy", metadata={"help": "Pareto figures' y: a readout"})
    out: Path = field(default=Path("figures/debias"), metadata={"help": "output folder"})

    def __post_init__(self) -> None:
        super().__post_init__()
        self.method_configs()  # every method's settings checked before any model loads

    def method_configs(self) -> list[MethodConfig]:
        """The config of every method of ``--methods``, each from its flags (InputError for a bad one)."""
        from lens_bias.debias.methods import from_options

        return from_options(self.methods, self.to_dict())


QUICK = {
    "methods": ("steering",), "steer_bias_types": ("gender",), "layers": (12,), "n_pairs": 16,
    "steer_multipliers": (-4.0, -1.0, 1.0, 4.0), "n_stereoset": 24, "n_crows_pairs": 24, "n_bbq": 1,
    "n_neutral": 8, "n_bbq_disambig": 4, "n_lms": 8, "n_knowledge": 12,
}  # fmt: skip


def run(config: Config) -> Path:
    """Fit or reuse every method, score them all against the baseline, save the result."""
    import dataclasses

    from lens_bias.debias import scoreboard
    from lens_bias.debias.methods import FitContext, check_methods
    from lens_bias.models import check_layers, load_model, model_record
    from lens_bias.provenance import Result, collect_provenance, set_seed
    from lens_bias.side_effects import SideEffectConfig

    set_seed(config.seed)
    model = load_model(config.model, device=config.device, dtype=config.dtype)
    check_layers(model, config.layers)
    methods = config.method_configs()
    check_methods(methods, model)  # every method's settings against the model, before the data and the fits
    measures = scoreboard.bias_measures(config.n_stereoset, config.n_crows_pairs, config.n_bbq, config.seed)
    context = FitContext(config.out / "artefacts", config.seed, config.batch_size, True, config.model, config.device)
    candidates = [method.fit(model, context) for method in methods]
    retention = SideEffectConfig(
        n_neutral=config.n_neutral, n_bbq=config.n_bbq_disambig, n_stereoset=config.n_lms,
        n_knowledge=config.n_knowledge, seed=config.seed, batch_size=config.batch_size,
    )  # fmt: skip
    with cli.executor(config) as executor:
        values = scoreboard.evaluate(
            model, candidates, measures, retention, cells=config.out / "cells", seed=config.seed,
            batch_size=config.batch_size, progress=True, executor=executor,
        )  # fmt: skip
    data = {m.name: m.describe()["data"] for m in measures}
    provenance = collect_provenance(model_record=model_record(model).to_dict(), data=data, seed=config.seed)
    config_record = {**config.to_dict(), "retention": dataclasses.asdict(retention)}
    items = values.pop("items")  # the per-item table, beside the values
    return Result("debias", values, config_record, provenance, items=items).save(config.out / "debias")


def summarize(result: Result) -> str:
    """The scoreboard's tables (Markdown) of a saved result: what a run prints."""
    from lens_bias.debias.scoreboard import markdown_table  # the library is imported in functions: --help speed

    return markdown_table(result.values)


def report(result: Result, path: Path, config: Config) -> None:
    """Print and write the scoreboard's tables; draw the Pareto figures from the saved result."""
    from lens_bias.figures.debias import pareto_figures
    from lens_bias.figures.primitives import save_figures
    from lens_bias.files import write_text_atomic

    table = summarize(result)
    title = f"# Debiasing scoreboard of {result.provenance['model']['name']}\n\n"
    write_text_atomic(path.with_name("debias.md"), title + table)
    print(table)
    figures = pareto_figures(result.values, retention=result.config["pareto_retention"])
    print("wrote", path, path.with_name("debias.md"), *save_figures(figures, path.parent, png=config.png))


def main(argv: list[str] | None = None) -> Result:
    return cli.main(Config, argv, description=__doc__, quick=QUICK, result_name="debias", run=run, report=report)


if __name__ == "__main__":
    cli.run(main)
