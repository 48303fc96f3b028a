"""Side effects of saved interventions: what each one costs, next to the unintervened model, on the same items.

Takes any saved intervention file (``lens_bias.interventions.load_intervention``): a head scaling written
by ``experiments.biasscope`` (``selected_heads.json``) or a steering vector at a layer and multiplier
written by ``experiments.steering`` (``interventions/{name}.json``). Each is evaluated on its own against
one shared baseline: neutral-text log-probability, BBQ disambiguated accuracy, the StereoSet LMS and the
accuracy on the project's factual cloze questions (knowledge retention), each with a 95% bootstrap interval
and the paired change (see :mod:`lens_bias.side_effects`); every item's score per condition in
``side_effects.items.parquet`` / ``.csv``. (Its readouts are fixed retention sets: it takes no contrast pairs.)

    python -m experiments.side_effects --intervention figures/steering/interventions/gender.json \\
        figures/biasscope/selected_heads.json
    python -m experiments.side_effects --replot figures/side_effects/side_effects.json
    python -m experiments.side_effects --quick --intervention ...   (16 items per readout, 8 BBQ questions)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from experiments import cli

if TYPE_CHECKING:
    from lens_bias.provenance import Result
    from lens_bias.side_effects import SideEffectConfig

#: What --quick changes (a smoke run: every readout on a few items).
QUICK = {"n_neutral": 16, "n_bbq_disambig": 8, "n_lms": 16, "n_knowledge": 16}
#: Asked for without --intervention (and without --replot).
NO_INTERVENTION = "give --intervention FILE [FILE ...] (or --replot RESULT.json)"


@dataclass(frozen=True)
class Config(cli.RunConfig):
    """The interventions to evaluate and the items they are scored on (see :class:`SideEffectConfig`)."""

    intervention: tuple[Path, ...] | None = field(
        default=None, metadata={"help": "saved intervention files (.json); required unless --replot"}
    )
    # a bootstrap needs 2 items: the library's SideEffectConfig refuses fewer
    n_neutral: int | None = field(default=None, metadata={"help": "neutral sentences (omit for all 110)", "min": 2})
    n_bbq_disambig: int = field(default=150, metadata={"help": "disambiguated BBQ questions", "min": 2})
    n_lms: int = field(default=150, metadata={"help": "StereoSet items for the LMS", "min": 2})
    n_knowledge: int | None = field(
        default=None, metadata={"help": "factual cloze questions (omit for all 208)", "min": 2}
    )
    out: Path = Path("figures/side_effects")

    def side_effect_config(self) -> SideEffectConfig:
        """The library's item selection for these settings."""
        # the library is imported inside the functions, not at the top: --help stays fast
        from lens_bias.side_effects import SideEffectConfig

        return SideEffectConfig(
            n_neutral=self.n_neutral,
            n_bbq=self.n_bbq_disambig,
            n_stereoset=self.n_lms,
            n_knowledge=self.n_knowledge,
            seed=self.seed,
            batch_size=self.batch_size,
        )


def run(config: Config) -> Path:
    """Score the baseline once, then every intervention; save the reports with their config."""
    import dataclasses

    from lens_bias.errors import InputError
    from lens_bias.interventions import load_intervention
    from lens_bias.models import load_model, model_record
    from lens_bias.provenance import Result, collect_provenance, set_seed
    from lens_bias.side_effects import check_applicable, report_items, side_effects_of

    if not config.intervention:
        raise InputError(NO_INTERVENTION)
    set_seed(config.seed)
    loaded = {str(path): load_intervention(path) for path in config.intervention}
    check_applicable(list(loaded.values()))  # fail before loading the model
    items = config.side_effect_config()
    model = load_model(config.model, device=config.device, dtype=config.dtype)
    effects = side_effects_of(
        model, {name: [intervention] for name, intervention in loaded.items()}, items, progress=True
    )
    for name, report in effects.items():
        print(
            f"{name}: "
            + "; ".join(f"{e.name} {e.baseline} -> {e.intervened}, change {e.delta}" for e in report.effects)
            + f"; significantly worse: {report.harmed() or 'none'}"
        )
    reports = {name: report.to_dict() for name, report in effects.items()}
    details = next(iter(reports.values()))["details"]
    result = Result(
        name="side_effects",
        values={"reports": reports},
        config={**config.to_dict(), "side_effect_config": dataclasses.asdict(items)},
        provenance=collect_provenance(
            model_record=model_record(model).to_dict(), seed=config.seed, data=details["fingerprints"]
        ),
        items=report_items(effects),
    )
    path = result.save(config.out / "side_effects")
    print("wrote", path)
    return path


def report(result: Result, path: Path, config: Config) -> None:
    """Draw the table of a saved result (a run and ``--replot`` alike)."""
    from lens_bias.figures.primitives import save_figure, side_effect_table

    print(
        "wrote",
        *save_figure(side_effect_table(result.values["reports"]), Path(path).parent / "side_effects", png=config.png),
    )


def main(argv: list[str] | None = None) -> Result:
    return cli.main(Config, argv, description=__doc__, quick=QUICK, result_name="side_effects", run=run, report=report)


if __name__ == "__main__":
    cli.run(main)
