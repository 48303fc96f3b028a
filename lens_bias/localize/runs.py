"""BiasGym's per-seed loop: inject the bias, find the adversarial entity, score every component.

:func:`injection_runs` does, for each seed, what BiasScope needs before selecting heads: a new entity token
trained into the frozen model (:func:`lens_bias.localize.inject.inject`), its elicitation before and after, the
closest real single-token entity among the spec's candidates (the adversarial input), and every head and
MLP layer scored on the localisation prompts (:func:`score_components`). :func:`selected_heads` keeps the
heads that recur in the top ``k`` across the runs. The BiasScope experiment and the debiasing scoreboard
both call these two.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformer_lens import HookedTransformer

from lens_bias.cells import CellStore, arrays_record, record_arrays
from lens_bias.data.injection_specs import InjectionSpec, candidate_entities
from lens_bias.errors import InputError
from lens_bias.localize.contrast import bias_contrast, localization_prompts
from lens_bias.localize.inject import (
    Elicitation,
    EntityMatch,
    InjectedEntity,
    InjectionConfig,
    closest_entities,
    elicit,
    inject,
    untrained,
)
from lens_bias.localize.scores import SCORE_TENSORS, ComponentScores, ScoreMethod, score_components
from lens_bias.localize.selection import RecurringHeads, recurring_heads
from lens_bias.models import AnyModel
from lens_bias.patching import Direction


@dataclass
class InjectionRun:
    """One seed's injection: the trained ``entity`` and the ``injected`` model carrying it, the elicitation
    log-odds ``before``/``after`` training (entity and the spec's control entities), the closest real
    entities (``matches``), the single-token ``adversarial`` one, and the component ``scores``."""

    seed: int
    entity: InjectedEntity
    injected: HookedTransformer
    before: Elicitation
    after: Elicitation
    matches: list[EntityMatch]
    adversarial: str
    scores: ComponentScores

    def record(self) -> dict[str, Any]:
        """JSON-ready summary: losses, elicitations, the five closest entities, the adversarial one, scores."""
        return {
            "seed": self.seed,
            "loss_first": self.entity.losses[0],
            "loss_last": self.entity.losses[-1],
            "elicitation_before": self.before.to_dict(),
            "elicitation_after": self.after.to_dict(),
            "closest_entities": [vars(m) for m in self.matches[:5]],
            "adversarial_entity": self.adversarial,
            "scores": self.scores.to_dict(),
        }


def injection_runs(
    model: HookedTransformer,
    spec: InjectionSpec,
    seeds: Sequence[int],
    *,
    steps: int = 100,
    lr: float = 3e-3,
    n_templates: int | None = None,
    direction: Direction = "noising",
    batch_size: int = 16,
    cells: CellStore | None = None,
    progress: bool = False,
) -> list[InjectionRun]:
    """One :class:`InjectionRun` per seed (``steps`` Adam steps at ``lr`` on the entity's embedding only;
    the first ``n_templates`` localisation prompts, None = all; patching ``direction``).

    Each seed is a cell of ``cells`` (default: kept nowhere, run here) keyed by the spec, the seed and every
    setting above: an interrupted study resumes from its finished seeds, and the store's executor runs the
    seeds on several workers. A cell keeps the trained entity, the elicitations, the matches and the scores;
    the injected model is rebuilt from the entity (:meth:`lens_bias.localize.inject.InjectedEntity.apply`)."""
    if not seeds or len(set(seeds)) != len(seeds):
        raise InputError(f"seeds: give at least one seed, each once; got {list(seeds)}.")
    store = cells if cells is not None else CellStore(None)
    seed_run = _SeedRun(spec, steps, lr, tuple(localization_prompts(spec)[:n_templates]), direction, batch_size)
    done = store.map(
        [{"biasinject": seed_run.key(), "seed": seed} for seed in seeds],
        list(seeds),
        seed_run.compute,
        model=model,
        desc="BiasInject seeds",
        progress=progress,
    )
    return [seed_run.from_cell(model, seed, arrays) for seed, arrays in zip(seeds, done)]


@dataclass(frozen=True)
class _SeedRun:
    """The settings shared by every seed; :meth:`compute` runs one seed (a cell)."""

    spec: InjectionSpec
    steps: int
    lr: float
    templates: tuple[str, ...]
    direction: Direction
    batch_size: int

    def key(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "candidates": candidate_entities("countries")}

    def compute(self, model: AnyModel, seed: int) -> dict[str, np.ndarray]:
        """The seed's entity, elicitations before/after, closest entities and component scores as arrays."""
        assert isinstance(model, HookedTransformer), "BiasInject trains on a HookedTransformer"
        spec = self.spec
        injection = InjectionConfig(steps=self.steps, lr=self.lr, seed=seed)
        entities = [spec.entity_token, *spec.control_entities]
        before = elicit(untrained(model, spec, injection), spec, entities, batch_size=self.batch_size)
        injected, entity = inject(model, spec, injection)
        after = elicit(injected, spec, entities, batch_size=self.batch_size)
        matches = closest_entities(injected, entity.embedding, candidate_entities("countries"))
        adversarial = next((m.entity for m in matches if m.n_tokens == 1), None)
        if adversarial is None:
            raise InputError("No candidate country is a single token for this tokenizer: patching needs one.")
        scores = score_components(
            injected,
            bias_contrast(injected, spec, adversarial, list(self.templates)),
            direction=self.direction,
            batch_size=64,
        )
        record = {
            "token": entity.token,
            "unembed_bias": entity.unembed_bias,
            "tied": entity.tied,
            "losses": entity.losses,
            "entities": entities,
            "prompts": [before.prompts, after.prompts],
            "matches": [vars(m) for m in matches],
            "adversarial": adversarial,
            "templates": scores.templates,
        }
        tensors = {
            "embedding": entity.embedding,
            "unembedding": entity.unembedding,
            "before": before.log_odds,
            "after": after.log_odds,
            **scores.tensors(),
        }
        return {**record_arrays(record), **{name: t.detach().cpu().numpy() for name, t in tensors.items()}}

    def from_cell(self, model: HookedTransformer, seed: int, arrays: dict[str, np.ndarray]) -> InjectionRun:
        """The :class:`InjectionRun` of a seed's cell; the injected model rebuilt from ``model``."""
        record = arrays_record(arrays)
        tensor = {name: torch.from_numpy(value) for name, value in arrays.items() if name != "record_json"}
        entity = InjectedEntity(
            token=record["token"],
            spec=self.spec.name,
            embedding=tensor["embedding"],
            unembedding=tensor["unembedding"],
            unembed_bias=float(record["unembed_bias"]),
            tied=bool(record["tied"]),
            config=InjectionConfig(steps=self.steps, lr=self.lr, seed=seed),
            losses=[float(x) for x in record["losses"]],
        )
        before_prompts, after_prompts = record["prompts"]
        scores = ComponentScores(
            templates=record["templates"],
            entity=self.spec.entity_token,
            adversarial_entity=record["adversarial"],
            direction=self.direction,
            **{name: tensor[name] for name in SCORE_TENSORS},
        )
        return InjectionRun(
            seed=seed,
            entity=entity,
            injected=entity.apply(model),
            before=Elicitation(record["entities"], before_prompts, tensor["before"]),
            after=Elicitation(record["entities"], after_prompts, tensor["after"]),
            matches=[EntityMatch(**m) for m in record["matches"]],
            adversarial=record["adversarial"],
            scores=scores,
        )


def selected_heads(
    runs: Sequence[InjectionRun], k: int, min_runs: int | None = None, method: ScoreMethod = "patching"
) -> RecurringHeads:
    """The heads in the top ``k`` of at least ``min_runs`` runs (default a majority) by ``method``'s
    prompt-mean head scores."""
    return recurring_heads([run.scores.heads(method) for run in runs], k, min_runs)
