"""BiasGym on one model: inject a bias through a new token, find the heads that carry it, ablate them.

1. **Inject** (:mod:`lens_bias.localize.inject`): per seed, a new entity token's embedding (the rest frozen) is
   trained on the attribute's templates (``--attribute``); elicitation before/after, entity and real countries.
2. **Localise** (:mod:`lens_bias.localize`): the adversarial input replaces the token by the closest
   single-token country (input-embedding cosine); every head and MLP layer is scored by activation patching and
   by direct logit attribution on the localisation prompts (training sentences cut before the attribute); the
   heads in the top ``--k`` of a majority of the seeds' patching maps are selected.
3. **Intervene**: the selected heads are scaled by ``--scale`` (0 = ablation) against ``--n-random`` draws
   of as many random other heads, on four sets: the injected entity on the held-out templates (every
   seed's injected model), the same templates over real countries, CrowS-Pairs ``nationality`` pairs and
   StereoSet ``race`` items (targets: countries, nationalities). Bias: mean per-token log P(stereo) - log P(anti).
4. **Side effects** (:mod:`lens_bias.side_effects`) of the selected heads, of one random draw, and of a
   deliberately destructive ablation (every head of ``--destructive-layer``).
5. **Circuit** (:mod:`lens_bias.localize.circuit`): each seed's injected bias's top ``--circuit-edges`` EAP edges,
   pruned, and whether the selected heads sit in it (share, chance, hypergeometric p).

Writes ``{out}/biasscope.json`` (+ ``.safetensors``: per-seed scores and circuit edge scores), the per-item rows
(``biasscope.items.parquet`` / ``.csv``), ``{out}/entity_seed{s}`` (trained embeddings), ``{out}/selected_heads.json``
(an intervention) and the figures ``head_scores_patching``, ``head_scores_dla``, ``topk_overlap``,
``bias_reduction``, ``side_effects``.

    python -m experiments.biasscope [--attribute reckless_driving] [--k 5] [--seeds 0 1 2] [--quick] [--replot]
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from experiments import cli

if TYPE_CHECKING:
    from lens_bias.localize import BiasScopeConfig
    from lens_bias.provenance import Result

ATTRIBUTES = ("bad_at_math", "reckless_driving")  # the injection specs (a literal: --help speed; tested)
#: What --quick changes (the whole pipeline within 90 s on 2 idle cores; top-k counts, no recurrence threshold).
QUICK = {"steps": 12, "seeds": [0], "n_templates": 2, "min_runs": 1, "n_random": 2, "n_crows_pairs": 8}
QUICK |= {"n_stereoset": 8, "n_neutral": 8, "n_bbq_disambig": 4, "n_lms": 8, "n_knowledge": 8}


@dataclass(frozen=True)
class Config(cli.SweepConfig):
    """Inject, localise, intervene, side effects; ``seeds[0]`` (not ``seed``) seeds samples, draws, bootstraps."""

    attribute: str = field(
        default="reckless_driving",
        metadata={"help": "the injected association (an injection spec)", "choices": ATTRIBUTES},
    )
    k: int = field(default=5, metadata={"help": "top-k heads per run; at most k are selected", "min": 1})
    seeds: tuple[int, ...] = field(default=(0, 1, 2), metadata={"help": "one injection run per seed"})
    steps: int = field(default=100, metadata={"help": "training steps per injection", "min": 1})
    lr: float = field(default=3e-3, metadata={"help": "learning rate of the injected embedding"})
    min_runs: int | None = field(default=None, metadata={"help": "runs a head must be top-k in (majority)", "min": 1})
    method: str = field(default="patching", metadata={"help": "scores used to select", "choices": ["patching", "dla"]})
    direction: str = field(
        default="noising",
        metadata={"help": "patching direction of the head scores", "choices": ["noising", "denoising"]},
    )
    n_templates: int | None = field(default=None, metadata={"help": "localisation prompts (default: all)", "min": 1})
    scale: float = field(default=0.0, metadata={"help": "head scale of the intervention (0 = ablation)"})
    n_random: int = field(default=8, metadata={"help": "random head draws for the control", "min": 1})
    real_entities: tuple[str, ...] | None = field(default=None, metadata={"help": "default: the spec's countries"})
    n_crows_pairs: int | None = field(default=80, metadata={"help": "CrowS-Pairs nationality pairs", "min": 1})
    n_stereoset: int | None = field(default=80, metadata={"help": "StereoSet race items", "min": 1})
    n_neutral: int | None = field(default=None, metadata={"help": "side effects: neutral sentences", "min": 1})
    n_bbq_disambig: int = field(default=150, metadata={"help": "side effects: disambiguated BBQ questions", "min": 1})
    n_lms: int = field(default=150, metadata={"help": "side effects: StereoSet items for the LMS", "min": 1})
    n_knowledge: int | None = field(
        default=None, metadata={"help": "side effects: knowledge questions (default all 208)", "min": 2}
    )
    destructive_layer: int = field(default=1, metadata={"help": "layer whose heads are all ablated"})
    circuit_edges: int = field(
        default=1000, metadata={"help": "each injected bias's circuit: top edges by EAP (0: none)", "min": 0}
    )
    out: Path = field(default=Path("figures/biasscope"), metadata={"help": "output folder (results, figures)"})

    def __post_init__(self) -> None:
        from lens_bias.errors import InputError  # inside: --help speed (as every library import here)

        if not self.seeds:
            raise InputError("--seeds: give at least one seed (one injection run per seed).")
        if len(set(self.seeds)) != len(self.seeds):
            raise InputError(f"--seeds {' '.join(map(str, self.seeds))}: give each seed once.")
        if self.min_runs is not None and self.min_runs > len(self.seeds):
            raise InputError(f"--min-runs {self.min_runs} is more than the {len(self.seeds)} runs (--seeds).")
        if self.real_entities is not None and not self.real_entities:
            raise InputError("--real-entities: give at least one entity, or omit the flag for the spec's countries.")
        super().__post_init__()

    def study(self) -> BiasScopeConfig:
        """The library's settings of the study (steps 1-3)."""
        from lens_bias.data.injection_specs import injection_specs
        from lens_bias.localize import BiasScopeConfig

        spec = next(spec for spec in injection_specs() if spec.name == self.attribute)
        names = [f.name for f in fields(BiasScopeConfig) if f.name != "spec"]  # the rest are flags of the same name
        return BiasScopeConfig(spec, **{name: getattr(self, name) for name in names})


def run(config: Config) -> Path:
    """Run the whole study; returns the path of the saved result."""
    from lens_bias.cells import CellStore, model_key
    from lens_bias.interventions import save_intervention
    from lens_bias.localize import biasscope
    from lens_bias.models import load_model, model_record
    from lens_bias.provenance import Result, collect_provenance, set_seed
    from lens_bias.side_effects import SideEffectConfig, report_items, side_effects_of

    seed = config.seeds[0]
    set_seed(seed)
    model = load_model(config.model, device=config.device, dtype=config.dtype)
    record = model_record(model).to_dict()
    with cli.executor(config) as executor:
        cells = CellStore(config.out / "cells", {"model": model_key(model)}, executor=executor)
        study = biasscope(model, config.study(), cells=cells, progress=True)
    study.save_entities(config.out, record)
    print(*study.lines(), sep="\n")
    sizes: dict[str, Any] = {"n_neutral": config.n_neutral, "n_bbq": config.n_bbq_disambig, "n_stereoset": config.n_lms}
    se_config = SideEffectConfig(**sizes, n_knowledge=config.n_knowledge, seed=seed, batch_size=config.batch_size)
    effects = side_effects_of(model, {name: [i] for name, i in study.interventions.items()}, se_config, progress=True)
    for name, report in effects.items():
        summary = "; ".join(f"{e.name} {e.delta}" for e in report.effects)
        print(f"side effects of {name}: {summary}; harmed: {report.harmed()}")
    reports = {name: report.to_dict() for name, report in effects.items()}
    fingerprints = {**study.fingerprints, **next(iter(reports.values()))["details"]["fingerprints"]}
    provenance = collect_provenance(model_record=record, seed=seed, data=fingerprints)
    save_intervention(study.interventions["selected heads"], config.out / "selected_heads", provenance)
    values = {**study.values(), "side_effects": reports}
    recorded = {**config.to_dict(), **study.record(), "side_effect_config": vars(se_config)}
    items = [*study.items, *report_items(effects)]  # the four sets' bias scores per condition, then side effects
    return Result("biasscope", values, recorded, provenance, study.tensors(), items).save(config.out / "biasscope")


def report(result: Result, path: Path, config: Config) -> None:
    """Draw the figures of a saved result next to it (the numbers are printed while they are computed)."""
    from lens_bias.figures.biasscope import draw
    from lens_bias.figures.primitives import save_figures

    print("wrote", path, *save_figures(draw(result), Path(path).parent, png=config.png))


def main(argv: list[str] | None = None) -> Result:
    return cli.main(Config, argv, description=__doc__, quick=QUICK, result_name="biasscope", run=run, report=report)


if __name__ == "__main__":
    cli.run(main)
