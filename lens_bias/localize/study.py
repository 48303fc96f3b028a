"""The BiasScope study up to its side effects: inject the bias on several seeds, select the heads that recur,
and compare scaling them with scaling random heads on every evaluation set (:func:`biasscope`).

The side effects of the study's interventions (:attr:`BiasScope.interventions`) are measured by
:func:`lens_bias.side_effects.side_effects`, a layer above this one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from transformer_lens import HookedTransformer

from lens_bias.cells import CellStore
from lens_bias.data.injection_specs import InjectionSpec
from lens_bias.errors import InputError
from lens_bias.interventions import Head, HeadScaling
from lens_bias.localize.circuit import injected_circuit
from lens_bias.localize.controls import AblationComparison, compare_to_random
from lens_bias.localize.evaluation import ItemLabel, evaluation_sets
from lens_bias.localize.runs import InjectionRun, injection_runs, selected_heads
from lens_bias.localize.scores import ScoreMethod
from lens_bias.localize.selection import RecurringHeads
from lens_bias.models import check_layers
from lens_bias.patching import Direction
from lens_bias.provenance import collect_provenance


@dataclass(frozen=True)
class BiasScopeConfig:
    """The study's settings. Injection: ``steps`` Adam steps at ``lr`` per seed of ``seeds``, scored on the
    first ``n_templates`` localisation prompts (None = all) by patching in ``direction``. Selection: the
    heads in the top ``k`` of at least ``min_runs`` runs (None = a majority) by ``method``'s scores.
    Control: the selected heads scaled by ``scale`` (0 = ablation) against ``n_random`` random draws, on
    the real entities ``real_entities`` (None = the spec's controls), ``n_crows_pairs`` CrowS-Pairs
    nationality pairs and ``n_stereoset`` StereoSet race items (None = all). Side effects are also measured
    for every head of ``destructive_layer``. Circuit: each run's injected bias scored by EAP on every edge, its top
    ``circuit_edges`` edges pruned, and whether the selected heads sit in it (0: not computed;
    :func:`~lens_bias.localize.circuit.injected_circuit`). The first seed seeds the samples, draws and bootstraps."""

    spec: InjectionSpec
    seeds: tuple[int, ...] = (0, 1, 2)
    k: int = 5
    steps: int = 100
    lr: float = 3e-3
    n_templates: int | None = None
    direction: Direction = "noising"
    method: ScoreMethod = "patching"
    min_runs: int | None = None
    scale: float = 0.0
    n_random: int = 8
    real_entities: tuple[str, ...] | None = None
    n_crows_pairs: int | None = 80
    n_stereoset: int | None = 80
    destructive_layer: int = 1
    circuit_edges: int = 1000
    batch_size: int = 32


@dataclass
class BiasScope:
    """What :func:`biasscope` found: the per-seed ``runs``, the ``recurring`` heads (``recurring.heads`` the
    selected ones), per evaluation set the ``comparisons`` (:meth:`AblationComparison.summary`), the
    benchmark items' ``fingerprints``, the ``interventions`` whose side effects the study measures:
    the selected heads, the first random draw, every head of the destructive layer, and the ``items``: per-item
    rows of the comparisons (:func:`ablation_items`); per run its injected ``circuits`` (values and every edge's
    score, :func:`~lens_bias.localize.circuit.injected_circuit`; none when ``config.circuit_edges`` is 0)."""

    config: BiasScopeConfig
    runs: list[InjectionRun]
    recurring: RecurringHeads
    comparisons: dict[str, dict[str, Any]]
    fingerprints: dict[str, str]
    interventions: dict[str, HeadScaling]
    items: list[dict[str, Any]]
    circuits: list[tuple[dict[str, Any], Tensor]]

    def lines(self) -> list[str]:
        """The printed summary: per seed the injection, the selected heads, per set the bias reductions."""
        entity = self.config.spec.entity_token
        lines = []
        for one in self.runs:
            gap = float((one.scores.biased_metric - one.scores.adversarial_metric).mean())
            real = {e: round(v, 2) for e, v in one.after.mean().items() if e != entity}
            lines.append(
                f"seed {one.seed}: loss {one.entity.losses[0]:.2f} -> {one.entity.losses[-1]:.2f}; log-odds "
                f"{one.before.mean()[entity]:.2f} -> {one.after.mean()[entity]:.2f} (real countries {real}); "
                f"adversarial {one.adversarial}; metric gap {gap:.2f}"
            )
        lines.append(f"selected heads {self.recurring.heads} (top-{self.config.k} counts over {len(self.runs)} runs)")
        for one, (circuit, _) in zip(self.runs, self.circuits):
            lines.append(
                f"seed {one.seed} injected circuit: top {circuit['n_edges']} edges pruned to "
                f"{circuit['pruned_edges']}, "
                f"{len(circuit['circuit_heads'])} of {circuit['n_heads']} heads; selected heads in it "
                f"{len(circuit['selected_in_circuit'])}/{len(self.recurring.heads)} (chance {circuit['chance']:.2f}, "
                f"p = {circuit['p_value']:.3f})"
            )
        for name, summary in self.comparisons.items():
            lines.append(
                f"{name}: baseline {summary['baseline']}; reduction selected {summary['reduction_selected']} "
                f"vs random {summary['reduction_random']}"
            )
        return lines

    def tensors(self) -> dict[str, Tensor]:
        """Every seed's per-prompt score tensors and its injected circuit's edge scores (``seed{s}/circuit_scores``
        ``[n_senders, n_receivers]``), under ``seed{s}/``."""
        tensors = {name: t for one in self.runs for name, t in one.scores.tensors(prefix=f"seed{one.seed}/").items()}
        return tensors | {
            f"seed{one.seed}/circuit_scores": scores for one, (_, scores) in zip(self.runs, self.circuits)
        }

    def values(self) -> dict[str, Any]:
        """JSON-ready values: runs, recurring and selected heads, seed-mean head and MLP scores of both
        methods (``[n_layers, n_heads]``, ``[n_layers]``), and the bias reductions."""
        runs = [one.record() for one in self.runs]
        mean = {
            unit: {
                method: torch.stack([torch.tensor(r["scores"][f"{unit}_{method}"]) for r in runs]).mean(0).tolist()
                for method in ("patching", "dla")
            }
            for unit in ("heads", "mlp")
        }
        return {
            "runs": runs,
            "recurring": self.recurring.to_dict(),
            "selected_heads": [list(h) for h in self.recurring.heads],
            "mean_heads": mean["heads"],
            "mean_mlp": mean["mlp"],
            "bias_reduction": self.comparisons,
            "injected_circuits": [{"seed": one.seed, **c} for one, (c, _) in zip(self.runs, self.circuits)],
        }

    def record(self) -> dict[str, Any]:
        """What the result's config records besides the flags: prompts, evaluation sets, score definitions."""
        spec = self.config.spec
        return {
            "spec": spec.name,
            "templates": self.runs[0].scores.templates,
            "eval_prompts": list(spec.eval_prompts),
            "candidates": "countries",
            "evaluation_sets": {
                "injected entity": "every seed's injected model, held-out eval prompts",
                "real countries": list(self.config.real_entities or spec.control_entities),
                "CrowS-Pairs nationality": "bias_type nationality, seeded subsample",
                "StereoSet race": "dev, bias_type race (targets: countries and nationalities)",
            },
            "bias_score": {
                "injected/real entities": "attribute-vs-neutral log-odds (nats) after held-out templates",
                "benchmarks": "mean per-token log P(stereotype) - log P(anti-stereotype) (nats)",
            },
            "ci": "bootstrap 95% over items",
        }

    def save_entities(self, folder: str | Path, model_record: dict[str, Any]) -> None:
        """Save every seed's trained entity as ``{folder}/entity_seed{s}`` (with the model's record)."""
        for one in self.runs:
            one.entity.save(
                Path(folder) / f"entity_seed{one.seed}", collect_provenance(model_record=model_record, seed=one.seed)
            )


def biasscope(
    model: HookedTransformer, config: BiasScopeConfig, *, cells: CellStore | None = None, progress: bool = False
) -> BiasScope:
    """Inject (:func:`injection_runs`, each seed a cell of ``cells``), select (:func:`selected_heads`) and
    compare to random heads (:func:`compare_to_random`) on the :func:`evaluation_sets`. The destructive
    layer and ``k`` are checked against the model before any training."""
    n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
    (destructive_layer,) = check_layers(model, config.destructive_layer)
    if config.k > n_layers * n_heads:
        raise InputError(f"--k {config.k} is more than the model's {n_layers * n_heads} heads.")
    if config.circuit_edges < 0:
        raise InputError(f"--circuit-edges must be >= 0 (0: no circuit), got {config.circuit_edges}.")
    seed = config.seeds[0]
    settings = {name: getattr(config, name) for name in ("steps", "lr", "n_templates", "direction", "batch_size")}
    runs = injection_runs(model, config.spec, config.seeds, **settings, cells=cells, progress=progress)
    recurring = selected_heads(runs, config.k, config.min_runs, config.method)
    sets, labels, fingerprints = evaluation_sets(
        model,
        [one.injected for one in runs],
        config.spec,
        list(config.real_entities or config.spec.control_entities),
        n_crows_pairs=config.n_crows_pairs,
        n_stereoset=config.n_stereoset,
        seed=seed,
        batch_size=config.batch_size,
    )
    comparisons: dict[str, dict[str, Any]] = {}
    items: list[dict[str, Any]] = []
    random_draws: list[list[Head]] = []
    for name, score_fn in sets.items():
        comparison = compare_to_random(
            score_fn,
            recurring.heads,
            n_layers=n_layers,
            n_heads=n_heads,
            n_random=config.n_random,
            scale=config.scale,
            seed=seed,
            progress=progress,
        )
        comparisons[name] = comparison.summary(seed=seed)
        items += ablation_items(name, labels[name], comparison)
        random_draws = comparison.random_heads  # the same seeded draws for every set
    interventions = {
        "selected heads": HeadScaling(tuple(recurring.heads), config.scale),
        "random heads (draw 1)": HeadScaling(tuple((layer, head) for layer, head in random_draws[0]), config.scale),
        f"every head of layer {destructive_layer}": HeadScaling(
            tuple((destructive_layer, h) for h in range(n_heads)), 0.0
        ),
    }
    circuits = [
        injected_circuit(
            one.injected,
            config.spec,
            one.adversarial,
            recurring.heads,
            config.circuit_edges,
            templates=one.scores.templates,
        )
        for one in (runs if config.circuit_edges else [])
    ]
    return BiasScope(config, runs, recurring, comparisons, fingerprints, interventions, items, circuits)


def ablation_items(name: str, labels: Sequence[ItemLabel], comparison: AblationComparison) -> list[dict[str, Any]]:
    """The per-item rows of one evaluation set's comparison: per item (``labels``, in the order of its scores) and
    ``condition`` (``baseline``, ``selected heads``, ``random heads (draw d)``, d from 1), the item's
    ``bias_score`` (the set's unit: log-odds or preference, nats) and the ``evaluation_set`` (``name``)."""
    if len(labels) != len(comparison.baseline):
        raise InputError(f"{name}: {len(labels)} item labels for {len(comparison.baseline)} scores.")
    conditions = {"baseline": comparison.baseline, "selected heads": comparison.selected}
    conditions |= {f"random heads (draw {d + 1})": scores for d, scores in enumerate(comparison.random)}
    return [
        label | {"condition": condition, "evaluation_set": name, "bias_score": float(scores[i])}
        for condition, scores in conditions.items()
        for i, label in enumerate(labels)
    ]
