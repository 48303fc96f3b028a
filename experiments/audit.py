"""The bias audit: the field's benchmarks and studies on one model, baseline and under each intervention.

Runs the measures of :mod:`lens_bias.audit` (StereoSet, CrowS-Pairs, BBQ in full; persona-conditioned
BBQ; quality-of-service harms) without interventions and under each ``--intervention`` file, all
against the one baseline, and writes ``{out}/audit.json`` (every summary with bootstrap 95% intervals,
n scored and n failed, the paired change of each intervention, the config, the provenance; row-level
scores in ``audit.safetensors``), ``{out}/audit.md`` (the headline table) and the figures. Every chunk
of work is a cell in ``{out}/cells/``: an interrupted audit, rerun with the same command, recomputes only
what it had not finished.

    python -m experiments.audit                        # everything, full data (hours on a laptop CPU)
    python -m experiments.audit --quick                # small sizes, minutes
    python -m experiments.audit --measures bbq --n-bbq 50 --intervention figures/steering/interventions/gender.json
    python -m experiments.audit --replot figures/audit/audit.json
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from experiments import cli
from lens_bias.audit.base import Measure
from lens_bias.audit.bbq import BBQMeasure
from lens_bias.audit.run import markdown_table, rows_as_tensors, run_audit
from lens_bias.errors import InputError
from lens_bias.files import write_text_atomic
from lens_bias.interventions import load_intervention
from lens_bias.models import AnyModel, load_model, model_record
from lens_bias.plotting import save_figures
from lens_bias.prompts import template_for
from lens_bias.provenance import Result, collect_provenance, set_seed

MEASURE_TYPES: dict[str, type[Measure]] = {measure.name: measure for measure in (BBQMeasure,)}
MEASURES = ("stereoset", "crows_pairs", "bbq", "persona_bbq", "service")


@dataclass(frozen=True)
class Config(cli.RunConfig):
    """Which measures, at which sizes, under which interventions."""

    measures: tuple[str, ...] = field(default=MEASURES, metadata={"help": "measures to run", "choices": MEASURES})
    intervention: tuple[Path, ...] = field(
        default=(), metadata={"help": "saved intervention files (.json), each audited against the one baseline"}
    )
    n_stereoset: int | None = field(default=None, metadata={"help": "StereoSet items (default all)", "min": 1})
    split_file: Path | None = field(
        default=None, metadata={"help": "a StereoSet file in the dev.json format instead of the shipped dev split"}
    )
    n_crows_pairs: int | None = field(default=None, metadata={"help": "CrowS-Pairs pairs (default all)", "min": 1})
    n_bbq: int | None = field(default=None, metadata={"help": "BBQ questions per category (default all)", "min": 1})
    bbq_chat: bool = field(default=False, metadata={"help": "ask BBQ through the chat template (default raw text)"})
    batch_size: int = field(default=32, metadata={"help": "rows per forward pass", "min": 1})
    out: Path = field(
        default=Path("figures/audit"), metadata={"help": "output folder (results, table, figures, cells)"}
    )

    def __post_init__(self) -> None:
        if not self.measures:
            raise InputError(f"--measures needs at least one of {', '.join(MEASURES)}.")
        for path in self.intervention:
            if not Path(path).is_file():
                raise InputError(f"--intervention {path}: no such file; give saved intervention .json files.")
        if self.split_file is not None and not Path(self.split_file).is_file():
            raise InputError(f"--split-file {self.split_file}: no such file.")
        super().__post_init__()


QUICK = {"n_stereoset": 60, "n_crows_pairs": 60, "n_bbq": 6}


def build_measures(config: Config, model: AnyModel) -> list[Measure]:
    """The measures of ``config``, their items drawn with its seed."""
    measures: list[Measure] = []
    for name in config.measures:
        if name == "bbq":
            template = template_for(model) if config.bbq_chat else None
            measures.append(BBQMeasure(n=config.n_bbq, seed=config.seed, template=template))
    return measures


def run(config: Config) -> Path:
    """Run the audit of ``config``; save the result, the table and return the result's path."""
    set_seed(config.seed)
    conditions = {Path(path).stem: [load_intervention(path)] for path in config.intervention}
    if len(conditions) != len(config.intervention):
        raise InputError("Two --intervention files share a name; rename one (conditions are named by file stem).")
    model = load_model(config.model, device=config.device)
    measures = build_measures(config, model)
    values, rows = run_audit(
        model,
        measures,
        conditions,
        cells=config.out / "cells",
        seed=config.seed,
        batch_size=config.batch_size,
        progress=True,
    )
    result = Result(
        name="audit",
        values=values,
        config={**config.to_dict(), "ci": "cluster bootstrap 95% percentile intervals (lens_bias.audit.base)"},
        provenance=collect_provenance(
            model_record=model_record(model).to_dict(),
            data={name: entry["describe"].get("data") for name, entry in values.items()},
            seed=config.seed,
        ),
        tensors=rows_as_tensors(rows),
    )
    return result.save(config.out / "audit")


def report(result: Result, path: Path, config: Config) -> None:
    """Print and write the headline table; draw every measure's figures from the saved result."""
    table = markdown_table(result.values)
    model = result.provenance["model"]["name"]
    write_text_atomic(path.with_name("audit.md"), f"# Bias audit of {model}\n\n{table}")
    print(table)
    figures = {}
    for name, entry in result.values.items():
        figures.update(MEASURE_TYPES[name].figures(entry["summaries"]))
    print("wrote", path, path.with_name("audit.md"), *save_figures(figures, path.parent, png=config.png))


def main(argv: list[str] | None = None) -> Result:
    return cli.main(Config, argv, description=__doc__, quick=QUICK, result_name="audit", run=run, report=report)


if __name__ == "__main__":
    cli.run(main)
