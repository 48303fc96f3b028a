"""The bias audit: the field's benchmarks and studies on one model, baseline and under each intervention.

Runs the measures of :mod:`lens_bias.audit` by registered name (:mod:`lens_bias.audit.registry`) without
interventions and under each ``--intervention`` file, against the one baseline; writes ``{out}/audit.json``
(every summary with 95% intervals, paired changes, config, provenance; rows in ``audit.safetensors``), the
per-item rows (``audit.items.parquet`` / ``.csv``: item id, text, group, condition, scores), ``{out}/audit.md``
(headline table, tables per group), every statistic as ``audit_summary.csv`` and the figures
(:mod:`lens_bias.figures.audit`). Every chunk of work is a cell in ``{out}/cells/``: rerun an interrupted
audit with the same command and only the unfinished cells are computed.

    python -m experiments.audit --quick                # small sizes, minutes (no flag: full data, hours)
    python -m experiments.audit --measures bbq --n-bbq 50 --intervention figures/steering/interventions/gender.json
    python -m experiments.audit --measures crows_pairs --pairs-file examples/pairs.csv   # your own pairs
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from experiments import cli

if TYPE_CHECKING:
    from lens_bias.provenance import Result


def _flag(help: str, default: Any = None, **metadata: Any) -> Any:
    return field(default=default, metadata={"help": help, **metadata})


CROWS = ["authors", "harness", "lens_bias"]  # the conventions of CrowS-Pairs, and of BBQ


@dataclass(frozen=True)
class Config(cli.PairsConfig, cli.SweepConfig):
    """Which measures, at which sizes, under which interventions (see lens_bias.audit.base.MeasureOptions)."""

    measures: tuple[str, ...] | None = _flag("registered measure names (default all: stereoset crows_pairs bbq ...)")
    intervention: tuple[Path, ...] = _flag("saved intervention files (.json), each audited against the baseline", ())
    n_stereoset: int | None = _flag("StereoSet items (default all)", None, min=1)
    split_file: Path | None = field(default=None, metadata={"help": "a StereoSet file in the dev.json format"})
    n_crows_pairs: int | None = _flag("CrowS-Pairs pairs (default all)", None, min=1)
    crows_pairs_convention: str = _flag(
        "CrowS-Pairs scoring convention (harness: a second forward per sentence)", "authors", choices=CROWS
    )
    n_bbq: int | None = _flag("BBQ questions per category (default all)", None, min=1)
    bbq_file: Path | None = field(default=None, metadata={"help": "your own BBQ questions (lens_bias.data.tables)"})
    bbq_chat: bool = _flag("ask BBQ through the chat template (default raw text)", False)
    bbq_convention: str = _flag("BBQ scoring convention (harness: the harness's prompt)", "authors", choices=CROWS)
    n_persona_bbq: int | None = _flag("persona BBQ: questions per category and context", 40, min=1)
    personas: tuple[str, ...] | None = _flag("persona BBQ: persona names (default: the six of personas.yaml)")
    n_rewordings: int = _flag("persona BBQ: rewordings of the persona instruction", 3, min=1)
    n_service_names: int | None = _flag("service: first names per group (of 4)", 2, min=1)
    n_service_templates: int | None = _flag("service: the first N request templates (default all 30)", None, min=1)
    n_service_samples: int = _flag("service: sampled answers per request", 2, min=1)
    max_new_tokens: int = _flag("service: tokens per answer", 48, min=1)
    refusal_vector: tuple[float, ...] = _flag(
        "also run the chat measures (service, persona_bbq) under the refusal steering vector at these multipliers "
        "(fitted in the run, applied from the end of the instruction)",
        (),
    )
    refusal_layers: tuple[int, ...] = _flag("layers the refusal vector is fitted at (best held-out used)", (8, 14, 20))
    out: Path = field(default=Path("figures/audit"), metadata={"help": "output folder (results, figures, cells)"})

    def __post_init__(self) -> None:
        from lens_bias.audit.registry import MEASURES, check_options  # here, not at the top: --help stays fast
        from lens_bias.errors import InputError

        names = list(MEASURES) if self.measures is None else list(self.measures)
        check_options(names, self.to_dict())
        if self.refusal_vector and not {"service", "persona_bbq"} & set(names):
            raise InputError("--refusal-vector applies to the chat measures: add service or persona_bbq to --measures.")
        if 0 in self.refusal_vector:
            raise InputError("--refusal-vector takes non-zero multipliers (the baseline is always run).")
        files = [*(("intervention", p) for p in self.intervention), ("split_file", self.split_file)]
        files.append(("bbq_file", self.bbq_file))
        for name, path in files:
            if path is not None and not Path(path).is_file():
                raise InputError(f"--{name.replace('_', '-')} {path}: no such file.")
        super().__post_init__()


QUICK: dict[str, Any] = {"n_stereoset": 40, "n_crows_pairs": 40, "n_bbq": 4, "n_persona_bbq": 2, "n_rewordings": 1}
QUICK["personas"] = ("elder", "Muslim")
# quality of service: 2 templates x 12 groups x 1 name x 1 answer of 16 tokens (the default: 30 x 12 x 2 x 2 of 48)
QUICK.update(n_service_templates=2, n_service_names=1, n_service_samples=1, max_new_tokens=16)


def build_measures(config: Config, model: Any) -> list[Any]:
    """The measures of ``config`` by registered name, their items drawn with its seed."""
    from lens_bias.audit.base import MeasureOptions
    from lens_bias.audit.registry import MEASURES, build_measures

    return build_measures(list(config.measures or MEASURES), MeasureOptions.pick(config.to_dict()), model)


def run(config: Config) -> Path:
    """Run the audit of ``config``; save the result and return its path."""
    from lens_bias.audit.run import audit_result, load_conditions, refusal_conditions, run_audit
    from lens_bias.models import check_layers, load_model
    from lens_bias.provenance import set_seed

    set_seed(config.seed)
    conditions = load_conditions(config.intervention)
    model = load_model(config.model, device=config.device, dtype=config.dtype)
    measures = build_measures(config, model)
    if config.refusal_vector:
        check_layers(model, config.refusal_layers)
    refusal, only, fit = refusal_conditions(
        model, measures, config.refusal_vector, config.refusal_layers, batch_size=config.batch_size, seed=config.seed
    )
    with cli.executor(config) as executor:
        values, rows = run_audit(
            model, measures, {**conditions, **refusal}, only=only, cells=config.out / "cells", seed=config.seed,
            batch_size=config.batch_size, progress=True, executor=executor,
        )  # fmt: skip
    record = {**config.to_dict(), "refusal_vector_fit": fit}
    return audit_result(model, values, rows, record, seed=config.seed, measures=measures).save(config.out / "audit")


def summarize(result: Result) -> str:
    """The headline table (Markdown) of a saved result: what a run prints."""
    from lens_bias.audit.run import markdown_table  # the library is imported in functions: --help stays fast

    return markdown_table(result.values)


def report(result: Result, path: Path, config: Config) -> None:
    """Print the headline table; write it and the tables per group to ``audit.md``; draw the figures."""
    from lens_bias.audit.run import group_tables, summary_frame
    from lens_bias.figures.audit import audit_figures
    from lens_bias.figures.primitives import save_figures
    from lens_bias.files import write_text_atomic

    table = summarize(result)
    title = f"# Bias audit of {result.provenance['model']['name']}\n\n"
    write_text_atomic(path.with_name("audit.md"), f"{title}{table}\n## Per group\n\n{group_tables(result.values)}")
    write_text_atomic(path.with_name("audit_summary.csv"), summary_frame(result.values).to_csv(index=False))
    print(table)
    figures = save_figures(audit_figures(result.values), path.parent, png=config.png)
    print("wrote", path, path.with_name("audit.md"), path.with_name("audit_summary.csv"), *figures)


def main(argv: list[str] | None = None) -> Result:
    return cli.main(Config, argv, description=__doc__, quick=QUICK, result_name="audit", run=run, report=report)


if __name__ == "__main__":
    cli.run(main)
