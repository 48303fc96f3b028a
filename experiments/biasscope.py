"""BiasGym on one model: inject a bias through a new token, find the heads that carry it, ablate them.

1. **Inject** (:mod:`lens_bias.localize.inject`): for each seed, a new entity token is added to the frozen model
   and only its embedding is trained on the attribute's templates (``--attribute``: reckless driving by
   default). Elicitation before/after on the held-out templates, for the entity and real countries.
2. **Localise** (:mod:`lens_bias.localize`): the adversarial input replaces the token by the closest
   single-token country (input-embedding cosine); every head and MLP layer is scored by activation
   patching (the patching engine) and by direct logit attribution on the localisation prompts (training
   sentences cut before the attribute). The heads in the top ``--k`` of a majority of the seeds'
   patching maps are selected.
3. **Intervene**: the selected heads are scaled by ``--scale`` (0 = ablation) and the bias reduction is
   measured against ``--n-random`` draws of as many random other heads, on four sets: the injected
   entity on the held-out templates (every seed's injected model), the same templates over real
   countries (the original model), CrowS-Pairs ``nationality`` pairs and StereoSet ``race`` items (their
   targets are countries and nationalities: Ethiopia, Italy, Norway, ...): reckless driving and bad
   maths are stereotypes about people from a country, and neither benchmark has that exact type.
   Bias on the benchmarks = mean per-token log P(stereotype) - log P(anti-stereotype).
4. **Side effects** (:mod:`lens_bias.side_effects`) of the selected-head ablation, of one random draw,
   and of a deliberately destructive ablation (every head of ``--destructive-layer``).

Writes ``{out}/biasscope.json`` (+ ``.safetensors``: per-seed score tensors), ``{out}/entity_seed{s}``
(each trained embedding), ``{out}/selected_heads.json`` (the intervention, loadable by
``lens_bias.interventions.load_intervention``) and the figures ``head_scores_patching``,
``head_scores_dla``, ``topk_overlap``, ``bias_reduction`` and ``side_effects`` (HTML + PNG).

    python -m experiments.biasscope [--attribute reckless_driving] [--k 5] [--seeds 0 1 2] [--quick]
    python -m experiments.biasscope --replot figures/biasscope/biasscope.json
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import plotly.graph_objects as go
import torch

from experiments import cli
from lens_bias.cells import CellStore, model_key
from lens_bias.data import (
    crows_pairs_contrast,
    fingerprint,
    load_crows_pairs,
    load_stereoset,
    sample,
    stereoset_pairs,
)
from lens_bias.data.injection_specs import InjectionSpec, injection_specs
from lens_bias.errors import InputError
from lens_bias.figures.primitives import bars_with_ci, heatmap, save_figure, side_effect_table
from lens_bias.interventions import HeadScaling, save_intervention
from lens_bias.localize import ScoreFn, ScoreMethod, compare_to_random, injection_runs, selected_heads
from lens_bias.localize.evaluation import elicitation_score, preference_score
from lens_bias.models import check_layers, load_model, model_record
from lens_bias.patching import Direction
from lens_bias.provenance import Result, collect_provenance, set_seed
from lens_bias.side_effects import SideEffectConfig, capability_scores, side_effects
from lens_bias.stats import Estimate

SPECS = {spec.name: spec for spec in injection_specs()}
#: What --quick changes (a smoke run of the whole pipeline in about three minutes on 2 CPU cores).
#: Its injections are too short for stable maps, so it selects by top-k count without a recurrence threshold.
QUICK = {
    "steps": 20,
    "seeds": [0, 1],
    "n_templates": 3,
    "min_runs": 1,
    "n_random": 3,
    "n_crows": 24,
    "n_stereoset": 24,
    "n_neutral": 30,
    "n_bbq": 8,
    "n_lms": 24,
    "n_knowledge": 24,
}


@dataclass(frozen=True)
class Config(cli.SweepConfig):
    """Inject, localise, intervene, side effects (see the module docstring). ``seed`` is unused: the
    first of ``seeds`` seeds the samples, the random draws and the bootstraps."""

    attribute: str = field(default="reckless_driving", metadata={"choices": sorted(SPECS)})
    k: int = field(default=5, metadata={"help": "top-k heads per run; at most k are selected", "min": 1})
    seeds: tuple[int, ...] = field(default=(0, 1, 2), metadata={"help": "one injection run per seed"})
    steps: int = field(default=100, metadata={"help": "training steps per injection", "min": 1})
    lr: float = 3e-3
    min_runs: int | None = field(
        default=None, metadata={"help": "runs a head must be top-k in (default: majority)", "min": 1}
    )
    method: str = field(default="patching", metadata={"help": "scores used to select", "choices": ["patching", "dla"]})
    direction: str = field(default="noising", metadata={"choices": ["noising", "denoising"]})
    n_templates: int | None = field(
        default=None, metadata={"help": "localisation prompts used (default: all)", "min": 1}
    )
    scale: float = field(default=0.0, metadata={"help": "head scale of the intervention (0 = ablation)"})
    n_random: int = field(default=8, metadata={"help": "random head draws for the control", "min": 1})
    real_entities: tuple[str, ...] | None = field(
        default=None, metadata={"help": "default: the spec's control countries"}
    )
    n_crows: int | None = field(default=80, metadata={"help": "CrowS-Pairs nationality pairs", "min": 1})
    n_stereoset: int | None = field(default=80, metadata={"help": "StereoSet race items", "min": 1})
    n_neutral: int | None = field(
        default=None, metadata={"help": "side effects: neutral sentences (default all)", "min": 1}
    )
    n_bbq: int = field(default=150, metadata={"help": "side effects: disambiguated BBQ questions", "min": 1})
    n_lms: int = field(default=150, metadata={"help": "side effects: StereoSet items for the LMS", "min": 1})
    n_knowledge: int | None = field(
        default=None, metadata={"help": "side effects: knowledge questions (default all 208)", "min": 2}
    )
    destructive_layer: int = field(default=1, metadata={"help": "layer whose heads are all ablated"})
    out: Path = field(default=Path("figures/biasscope"), metadata={"help": "output folder (results, figures)"})

    def __post_init__(self) -> None:
        if not self.seeds:
            raise InputError("--seeds: give at least one seed (one injection run per seed).")
        if len(set(self.seeds)) != len(self.seeds):
            raise InputError(f"--seeds {' '.join(map(str, self.seeds))}: give each seed once.")
        if self.min_runs is not None and self.min_runs > len(self.seeds):
            raise InputError(f"--min-runs {self.min_runs} is more than the {len(self.seeds)} runs (--seeds).")
        if self.real_entities is not None and not self.real_entities:
            raise InputError("--real-entities: give at least one entity, or omit the flag for the spec's countries.")
        super().__post_init__()

    @property
    def spec(self) -> InjectionSpec:
        return SPECS[self.attribute]


def evaluation_sets(model, injected_models, config: Config) -> tuple[dict[str, ScoreFn], dict[str, str]]:
    """Per-item bias scores as functions of the interventions, by evaluation set (see the docstring),
    and the fingerprints of the benchmark items."""
    spec = config.spec
    real = list(config.real_entities or spec.control_entities)
    crows = crows_pairs_contrast(sample(load_crows_pairs(["nationality"]), config.n_crows, config.seeds[0]))
    stereo = sample(stereoset_pairs(load_stereoset(bias_types=["race"])), config.n_stereoset, config.seeds[0])
    sets = {
        "injected entity": elicitation_score(injected_models, spec, [spec.entity_token], batch_size=config.batch_size),
        "real countries": elicitation_score([model], spec, real, batch_size=config.batch_size),
        "CrowS-Pairs nationality": preference_score(model, crows, batch_size=config.batch_size),
        "StereoSet race": preference_score(model, stereo, batch_size=config.batch_size),
    }
    return sets, {"crows_pairs_nationality": fingerprint(crows), "stereoset_race": fingerprint(stereo)}


def run(config: Config) -> Path:
    """Run the whole study; returns the path of the saved result."""
    spec = config.spec
    set_seed(config.seeds[0])
    model = load_model(config.model, device=config.device)
    n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
    (destructive_layer,) = check_layers(model, config.destructive_layer)  # before any training
    if config.k > n_layers * n_heads:
        raise InputError(f"--k {config.k} is more than the model's {n_layers * n_heads} heads.")
    record = model_record(model).to_dict()
    with cli.executor(config) as executor:
        seed_runs = injection_runs(
            model,
            spec,
            config.seeds,
            steps=config.steps,
            lr=config.lr,
            n_templates=config.n_templates,
            direction=cast(Direction, config.direction),
            batch_size=config.batch_size,
            cells=CellStore(config.out / "cells", {"model": model_key(model)}, executor=executor),
            progress=True,
        )
    runs: list[dict[str, Any]] = []
    tensors: dict[str, torch.Tensor] = {}
    for one in seed_runs:
        one.entity.save(config.out / f"entity_seed{one.seed}", collect_provenance(model_record=record, seed=one.seed))
        tensors.update(one.scores.tensors(prefix=f"seed{one.seed}/"))
        runs.append(one.record())
        gap = float((one.scores.biased_metric - one.scores.adversarial_metric).mean())
        print(
            f"seed {one.seed}: loss {one.entity.losses[0]:.2f} -> {one.entity.losses[-1]:.2f}; log-odds "
            f"{one.before.mean()[spec.entity_token]:.2f} -> {one.after.mean()[spec.entity_token]:.2f} "
            f"(real countries { ({e: round(v, 2) for e, v in one.after.mean().items() if e != spec.entity_token}) }); "
            f"adversarial {one.adversarial}; metric gap {gap:.2f}"
        )
    injected_models = [one.injected for one in seed_runs]
    recurring = selected_heads(seed_runs, config.k, config.min_runs, cast(ScoreMethod, config.method))
    selected = recurring.heads
    print(f"selected heads {selected} (top-{config.k} counts over {len(runs)} runs)")
    sets, fingerprints = evaluation_sets(model, injected_models, config)
    comparisons, random_draws = {}, []
    for name, score_fn in sets.items():
        comparison = compare_to_random(
            score_fn,
            selected,
            n_layers=n_layers,
            n_heads=n_heads,
            n_random=config.n_random,
            scale=config.scale,
            seed=config.seeds[0],
            progress=True,
        )
        comparisons[name] = comparison.summary(seed=config.seeds[0])
        random_draws = comparison.random_heads  # the same seeded draws for every set
        print(
            f"{name}: baseline {comparisons[name]['baseline']}; reduction selected "
            f"{comparisons[name]['reduction_selected']} vs random {comparisons[name]['reduction_random']}"
        )

    se_config = SideEffectConfig(
        n_neutral=config.n_neutral,
        n_bbq=config.n_bbq,
        n_stereoset=config.n_lms,
        n_knowledge=config.n_knowledge,
        seed=config.seeds[0],
        batch_size=config.batch_size,
    )
    baseline = capability_scores(model, (), se_config, progress=True)
    interventions = {
        "selected heads": HeadScaling(tuple(selected), config.scale),
        "random heads (draw 1)": HeadScaling(tuple((layer, head) for layer, head in random_draws[0]), config.scale),
        f"every head of layer {destructive_layer}": HeadScaling(
            tuple((destructive_layer, h) for h in range(n_heads)), 0.0
        ),
    }
    reports = {}
    for name, intervention in interventions.items():
        effects = side_effects(model, [intervention], se_config, baseline=baseline, progress=True)
        reports[name] = effects.to_dict()
        print(
            f"side effects of {name}: "
            + "; ".join(f"{e.name} {e.delta}" for e in effects.effects)
            + f"; harmed: {effects.harmed()}"
        )
    provenance = collect_provenance(
        model_record=record,
        seed=config.seeds[0],
        data={**fingerprints, **next(iter(reports.values()))["details"]["fingerprints"]},
    )
    save_intervention(interventions["selected heads"], config.out / "selected_heads", provenance)

    runs_scores = {
        method: torch.stack([torch.tensor(r["scores"][f"heads_{method}"]) for r in runs]).mean(0)
        for method in ("patching", "dla")
    }
    mlp_scores = {
        method: torch.stack([torch.tensor(r["scores"][f"mlp_{method}"]) for r in runs]).mean(0)
        for method in ("patching", "dla")
    }
    values = {
        "runs": runs,
        "recurring": recurring.to_dict(),
        "selected_heads": [list(h) for h in selected],
        "mean_heads": {m: s.tolist() for m, s in runs_scores.items()},
        "mean_mlp": {m: s.tolist() for m, s in mlp_scores.items()},
        "bias_reduction": comparisons,
        "side_effects": reports,
    }
    recorded = {
        **config.to_dict(),
        "spec": spec.name,
        "templates": seed_runs[0].scores.templates,
        "eval_prompts": list(spec.eval_prompts),
        "candidates": "countries",
        "evaluation_sets": {
            "injected entity": "every seed's injected model, held-out eval prompts",
            "real countries": list(config.real_entities or spec.control_entities),
            "CrowS-Pairs nationality": "bias_type nationality, seeded subsample",
            "StereoSet race": "dev, bias_type race (targets: countries and nationalities)",
        },
        "bias_score": {
            "injected/real entities": "attribute-vs-neutral log-odds (nats) after held-out templates",
            "benchmarks": "mean per-token log P(stereotype) - log P(anti-stereotype) (nats)",
        },
        "side_effect_config": vars(se_config),
        "ci": "bootstrap 95% over items",
    }
    path = Result(name="biasscope", values=values, config=recorded, provenance=provenance, tensors=tensors).save(
        config.out / "biasscope"
    )
    print("wrote", path)
    return path


# --- figures (from a saved result) ---------------------------------------------------------------------


def _head_heatmap(result: Result, method: str) -> go.Figure:
    heads = np.array(result.values["mean_heads"][method])
    mlp = np.array(result.values["mean_mlp"][method])[:, None]
    n_layers, n_heads = heads.shape
    config = result.config
    unit = f"share of the metric gap, {config['direction']}" if method == "patching" else "logits"
    name = "activation patching" if method == "patching" else "direct logit attribution"
    figure = heatmap(
        np.concatenate([heads, mlp], 1),
        [f"H{h}" for h in range(n_heads)] + ["MLP"],
        [f"L{layer}" for layer in range(n_layers)],
        zmid=0.0,
        title=f"BiasScope ({name}): contribution to logit(attribute) - logit(neutral)<br>"
        f"<sup>{config['spec']}, mean of {len(config['seeds'])} runs ({unit})<br>colours "
        "clipped at the heads' range: MLP cells may saturate (hover for values)</sup>",
        x_title="query head (last column: the layer's MLP)",
        y_title="layer",
    )
    limit = float(np.nanmax(np.abs(heads)))
    figure.update_traces(zmin=-limit, zmax=limit)
    figure.update_layout(width=750, height=220 + 22 * n_layers, margin={"t": 120})
    return figure


def _overlap_figure(result: Result) -> go.Figure:
    recurring = result.values["recurring"]
    seeds = [f"seed {s}" for s in result.config["seeds"]]
    return heatmap(
        np.array(recurring["overlap"]),
        seeds,
        seeds,
        colorscale="Blues",
        text_fmt=".2f",
        title=f"Share of top-{recurring['k']} heads shared between injection runs<br>"
        f"<sup>selected: {recurring['heads']}</sup>",
        x_title="run",
        y_title="run",
    )


def _reduction_figure(result: Result) -> go.Figure:
    sets = result.values["bias_reduction"]
    names = list(sets)
    first = sets[names[0]]
    groups = {
        f"selected heads (n={len(first['selected_heads'])})": [
            Estimate.from_dict(sets[n]["reduction_selected"]) for n in names
        ],
        f"random heads (mean of {first['n_draws']} draws)": [
            Estimate.from_dict(sets[n]["reduction_random"]) for n in names
        ],
    }
    return bars_with_ci(
        names,
        groups,
        reference_line=0.0,
        title=f"Bias reduction with the heads scaled by {first['scale']}<br>"
        f"<sup>{result.config['spec']}; 95% bootstrap CI over items</sup>",
        y_title="bias reduction (nats; baseline - intervened)",
    )


def draw(result: Result) -> dict[str, go.Figure]:
    """The figures of a saved BiasScope result, by file stem."""
    return {
        "head_scores_patching": _head_heatmap(result, "patching"),
        "head_scores_dla": _head_heatmap(result, "dla"),
        "topk_overlap": _overlap_figure(result),
        "bias_reduction": _reduction_figure(result),
        "side_effects": side_effect_table(result.values["side_effects"]),
    }


def report(result: Result, path: Path, config: Config) -> None:
    """Draw the figures of a saved result next to it (the numbers are printed while they are computed)."""
    for stem, figure in draw(result).items():
        print("wrote", *save_figure(figure, Path(path).parent / stem, png=config.png))


def main(argv: list[str] | None = None) -> Result:
    return cli.main(Config, argv, description=__doc__, quick=QUICK, result_name="biasscope", run=run, report=report)


if __name__ == "__main__":
    cli.run(main)
