"""The bias audit: the field's benchmarks and studies on one model, baseline and under each intervention.

Runs the measures of :mod:`lens_bias.audit` (StereoSet, CrowS-Pairs, BBQ in full; persona-conditioned
BBQ; quality-of-service harms) without interventions and under each ``--intervention`` file, all
against the one baseline, and writes ``{out}/audit.json`` (every summary with bootstrap 95% intervals,
n scored and n failed, the paired change of each intervention, the config, the provenance; row-level
scores in ``audit.safetensors``), ``{out}/audit.md`` (the headline table, then a table per group) and the
figures. Every chunk of work is a cell in ``{out}/cells/``: an interrupted audit, rerun with the same
command, recomputes only what it had not finished.

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
from lens_bias.audit.crows_pairs import CrowsPairsMeasure
from lens_bias.audit.persona import PersonaBBQMeasure
from lens_bias.audit.run import group_tables, markdown_table, rows_as_tensors, run_audit
from lens_bias.audit.service import ServiceMeasure
from lens_bias.audit.stereoset import StereoSetMeasure
from lens_bias.data.service_requests import service_templates
from lens_bias.errors import InputError
from lens_bias.figures.primitives import save_figures
from lens_bias.files import write_text_atomic
from lens_bias.interventions import AddVector, load_intervention
from lens_bias.models import AnyModel, check_layers, load_model, model_record
from lens_bias.prompts import template_for
from lens_bias.provenance import Result, collect_provenance, set_seed
from lens_bias.steering import refusal_vector

MEASURE_TYPES: dict[str, type[Measure]] = {
    measure.name: measure
    for measure in (StereoSetMeasure, CrowsPairsMeasure, BBQMeasure, PersonaBBQMeasure, ServiceMeasure)
}
MEASURES = tuple(MEASURE_TYPES)


@dataclass(frozen=True)
class Config(cli.SweepConfig):
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
    n_persona_bbq: int | None = field(
        default=40, metadata={"help": "persona BBQ: questions per category and context", "min": 1}
    )
    personas: tuple[str, ...] | None = field(
        default=None, metadata={"help": "persona BBQ: persona names (default: the six of data/resources/personas.yaml)"}
    )
    rewordings: int = field(
        default=3, metadata={"help": "persona BBQ: rewordings of the persona instruction", "min": 1}
    )
    bbq_chat: bool = field(default=False, metadata={"help": "ask BBQ through the chat template (default raw text)"})
    service_names: int | None = field(default=2, metadata={"help": "service: first names per group (of 4)", "min": 1})
    service_templates: int | None = field(
        default=None, metadata={"help": "service: the first N request templates (default all 30)", "min": 1}
    )
    service_samples: int = field(default=2, metadata={"help": "service: sampled answers per request", "min": 1})
    max_new_tokens: int = field(default=48, metadata={"help": "service: tokens per answer", "min": 1})
    refusal_vector: tuple[float, ...] = field(
        default=(),
        metadata={
            "help": "also run the chat measures (service, persona_bbq) under the refusal steering vector "
            "at these multipliers (fitted in the run, applied from the end of the instruction)"
        },
    )
    refusal_layers: tuple[int, ...] = field(
        default=(8, 14, 20), metadata={"help": "layers the refusal vector is fitted at (the best held-out one is used)"}
    )
    dtype: str = field(
        default="float32",
        metadata={
            "help": "weights dtype (bfloat16: ~2.4x faster on CPUs with AMX; fp32 is the reference)",
            "choices": ("float32", "bfloat16", "float16"),
        },
    )
    batch_size: int = field(default=32, metadata={"help": "rows per forward pass", "min": 1})
    out: Path = field(
        default=Path("figures/audit"), metadata={"help": "output folder (results, table, figures, cells)"}
    )

    def __post_init__(self) -> None:
        if self.refusal_vector and not {"service", "persona_bbq"} & set(self.measures):
            raise InputError("--refusal-vector applies to the chat measures: add service or persona_bbq to --measures.")
        if 0 in self.refusal_vector:
            raise InputError("--refusal-vector takes non-zero multipliers (the baseline is always run).")
        if not self.measures:
            raise InputError(f"--measures needs at least one of {', '.join(MEASURES)}.")
        for path in self.intervention:
            if not Path(path).is_file():
                raise InputError(f"--intervention {path}: no such file; give saved intervention .json files.")
        if self.split_file is not None and not Path(self.split_file).is_file():
            raise InputError(f"--split-file {self.split_file}: no such file.")
        super().__post_init__()


QUICK = {
    "n_stereoset": 60,
    "n_crows_pairs": 60,
    "n_bbq": 6,
    "n_persona_bbq": 2,
    "personas": ("elder", "Muslim"),
    "rewordings": 1,
}


def build_measures(config: Config, model: AnyModel) -> list[Measure]:
    """The measures of ``config``, their items drawn with its seed."""
    measures: list[Measure] = []
    for name in config.measures:
        if name == "stereoset":
            measures.append(StereoSetMeasure(split_file=config.split_file, n=config.n_stereoset, seed=config.seed))
        elif name == "crows_pairs":
            measures.append(CrowsPairsMeasure(n=config.n_crows_pairs, seed=config.seed))
        elif name == "bbq":
            template = template_for(model) if config.bbq_chat else None
            measures.append(BBQMeasure(n=config.n_bbq, seed=config.seed, template=template))
        elif name == "service":
            keys = [t.key for t in service_templates()][: config.service_templates]
            measures.append(
                ServiceMeasure(
                    n_names=config.service_names,
                    templates=tuple(keys),
                    n_samples=config.service_samples,
                    max_new_tokens=config.max_new_tokens,
                    seed=config.seed,
                )
            )
        elif name == "persona_bbq":
            measures.append(
                PersonaBBQMeasure(
                    personas=config.personas, rewordings=config.rewordings, n=config.n_persona_bbq, seed=config.seed
                )
            )
    return measures


def run(config: Config) -> Path:
    """Run the audit of ``config``; save the result, the table and return the result's path."""
    set_seed(config.seed)
    conditions = {Path(path).stem: [load_intervention(path)] for path in config.intervention}
    if len(conditions) != len(config.intervention):
        raise InputError("Two --intervention files share a name; rename one (conditions are named by file stem).")
    model = load_model(config.model, device=config.device, dtype=config.dtype)
    measures = build_measures(config, model)
    chat = [m.name for m in measures if not m.raw_text]
    if config.refusal_vector:
        check_layers(model, config.refusal_layers)
    only: dict[str, list[str]] = {}
    refusal = {}
    if config.refusal_vector and chat:
        fitted = refusal_vector(model, config.refusal_layers, batch_size=config.batch_size, seed=config.seed)
        assert fitted.layer is not None, "refusal_vector fits on held-out pairs, which set the best layer"
        refusal = {"layer": fitted.layer, "summary": fitted.summary()}
        for multiplier in config.refusal_vector:
            name = f"refusal{multiplier:+g}"
            conditions[name] = [AddVector(fitted.vector, multiplier, [fitted.layer])]
            only[name] = chat
    with cli.executor(config) as executor:
        values, rows = run_audit(
            model,
            measures,
            conditions,
            only=only,
            cells=config.out / "cells",
            seed=config.seed,
            batch_size=config.batch_size,
            progress=True,
            executor=executor,
        )
    result = Result(
        name="audit",
        values=values,
        config={
            **config.to_dict(),
            "refusal_vector_fit": refusal,
            "ci": "cluster bootstrap 95% percentile intervals (lens_bias.audit.base)",
        },
        provenance=collect_provenance(
            model_record=model_record(model).to_dict(),
            data={name: entry["describe"].get("data") for name, entry in values.items()},
            seed=config.seed,
        ),
        tensors=rows_as_tensors(rows),
    )
    return result.save(config.out / "audit")


def report(result: Result, path: Path, config: Config) -> None:
    """Print the headline table; write it and the tables per group to ``audit.md``; draw every measure's
    figures from the saved result."""
    table = markdown_table(result.values)
    model = result.provenance["model"]["name"]
    groups = group_tables(result.values)
    write_text_atomic(path.with_name("audit.md"), f"# Bias audit of {model}\n\n{table}\n## Per group\n\n{groups}")
    print(table)
    figures = {}
    for name, entry in result.values.items():
        figures.update(MEASURE_TYPES[name].figures(entry["summaries"]))
    print("wrote", path, path.with_name("audit.md"), *save_figures(figures, path.parent, png=config.png))


def main(argv: list[str] | None = None) -> Result:
    return cli.main(Config, argv, description=__doc__, quick=QUICK, result_name="audit", run=run, report=report)


if __name__ == "__main__":
    cli.run(main)
