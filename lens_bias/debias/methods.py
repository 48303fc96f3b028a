"""The debiasing methods as candidates: each fitted once, saved, and reused while its settings hold.

A :class:`Candidate` is "a way to get a model (+ hooks) to evaluate": the model it runs on (None: the base
model) and the interventions applied to it. Two kinds exist:

* **interventions** on the base model: a steering vector (:func:`steering_candidate`), the refusal-aware
  red-teaming combination of the steering study (:func:`redteam_candidate`), the AlignEZ edit with SVD or
  CCS directions (:func:`alignez_candidate`), BiasScope head ablation (:func:`head_ablation_candidate`);
* **a new checkpoint**: the LoRA fine-tune (:func:`finetune_candidate`), a merged model folder that
  :func:`lens_bias.models.load_model` reads.

Every fitted artefact is saved under the folder given (interventions in the one saved format of
:mod:`lens_bias.interventions.saved`, with the fit's key in their provenance) and reused by a later call
whose key (method, settings, model record, data) is the same; any change refits.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

from transformer_lens import HookedTransformer

from lens_bias.data.contrast_splits import contrast_split
from lens_bias.data.injection_specs import injection_specs
from lens_bias.data.records import ContrastPair, fingerprint
from lens_bias.errors import InputError
from lens_bias.interventions import AddVector, HeadScaling, Intervention, load_intervention, save_intervention
from lens_bias.interventions.saved import SavableIntervention
from lens_bias.localize.runs import injection_runs, selected_heads
from lens_bias.models import model_record
from lens_bias.provenance import collect_provenance, to_jsonable
from lens_bias.steering import FittedVector, fit_vector, preference_measure, refusal_vector
from lens_bias.steering.sweep import OrientationMeasure

STEER_MULTIPLIERS = (-8.0, -4.0, -2.0, -1.0, 1.0, 2.0, 4.0, 8.0)
"""Raw multipliers a debiasing vector is calibrated over: negative toward the anti-stereotype, positive for
a model that already prefers the anti-stereotype (the unbiased point can be on either side)."""


@dataclass
class Candidate:
    """One debiasing method ready to evaluate: ``interventions`` on ``model`` (None: the base model).

    ``name`` labels it in the scoreboard, ``family`` groups methods of one kind (``"steering"``,
    ``"red-teaming"``, ``"alignez"``, ``"head ablation"``, ``"fine-tuning"``), ``artefacts`` are the saved
    files or folders it was built from, ``details`` what its fit measured (layer, calibration, ...)."""

    name: str
    family: str
    interventions: tuple[Intervention, ...] = ()
    model: HookedTransformer | None = None
    artefacts: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """JSON-ready record: name, family, the interventions' descriptions, artefacts, details, and the
        model record when the candidate has its own model."""
        return {
            "name": self.name,
            "family": self.family,
            "interventions": [i.describe() for i in self.interventions],
            "model": None if self.model is None else model_record(self.model).to_dict(),
            "artefacts": self.artefacts,
            "details": to_jsonable(self.details),
        }


def _normal(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists, keys strings, NaN None)."""
    return json.loads(json.dumps(to_jsonable(value)))


def reuse_or_fit(
    folder: str | Path,
    name: str,
    key: dict[str, Any],
    fit: Callable[[], tuple[Sequence[SavableIntervention], dict[str, Any]]],
) -> tuple[list[SavableIntervention], dict[str, Any], list[str]]:
    """The interventions saved as ``{folder}/{name}/{i}.json`` if their recorded fit key equals ``key``;
    otherwise ``fit()`` (interventions, details), saved there with the key. Returns (interventions,
    details, paths)."""
    stem = Path(folder) / name
    index = stem / "fit.json"
    key = _normal(key)
    if index.is_file():
        saved = json.loads(index.read_text(encoding="utf-8"))
        if saved.get("key") == key and all((stem / f"{i}.json").is_file() for i in range(saved["n"])):
            paths = [str(stem / f"{i}.json") for i in range(saved["n"])]
            return [load_intervention(p) for p in paths], saved["details"], paths
    interventions, details = fit()
    provenance = collect_provenance(model_record=key.get("model"), seed=key.get("seed"))
    paths = [
        str(save_intervention(i, stem / str(n), {**provenance, "fit_key": key})) for n, i in enumerate(interventions)
    ]
    from lens_bias.files import write_text_atomic

    # written last: an interrupted fit leaves no index, so the next call refits
    write_text_atomic(index, json.dumps({"key": key, "n": len(paths), "details": _normal(details)}, indent=1))
    return list(interventions), _normal(details), paths


def _key(model: HookedTransformer, method: str, seed: int, **settings: Any) -> dict[str, Any]:
    record = model_record(model).to_dict()
    if record["sha256"] is not None:
        record.pop("source")
    return {"method": method, "model": record, "seed": seed, "settings": settings}


def _oriented_bias_vector(
    model: HookedTransformer,
    bias_type: str,
    layers: Sequence[int],
    orient_multiplier: float,
    n_pairs: int | None,
    n_test: int | None,
    n_calibration: int,
    seed: int,
    batch_size: int,
    progress: bool,
) -> tuple[FittedVector, list[ContrastPair], OrientationMeasure]:
    """The mean-difference vector of ``bias_type`` (averaged from the first differing token) on its training
    targets, its best held-out layer, its sign fixed with ``+/- orient_multiplier`` so that + is toward the
    stereotype on the first ``n_calibration`` training pairs; returns (vector, those pairs, their measure)."""
    split = contrast_split(bias_type, n_train=n_pairs, n_test=n_test, seed=seed)
    fitted = fit_vector(
        model,
        split,
        layers,
        readout="mean_from_difference",
        seed=seed,
        batch_size=batch_size,
        progress=f"{bias_type} vector" if progress else False,
    )
    calibration = split.train[:n_calibration]
    measure = preference_measure(model, calibration, batch_size=batch_size)
    return fitted.oriented(measure, orient_multiplier, start=None), calibration, measure


def steering_candidate(
    model: HookedTransformer,
    bias_type: str,
    folder: str | Path,
    *,
    layers: Sequence[int],
    multipliers: Sequence[float] = STEER_MULTIPLIERS,
    n_pairs: int | None = 100,
    n_test: int | None = 40,
    n_calibration: int = 32,
    seed: int = 0,
    batch_size: int = 16,
    progress: bool = False,
) -> Candidate:
    """The best debiasing steering vector of one StereoSet bias type (``gender``, ``race``, ``religion``,
    ``profession``) or of ``gender-prompts``.

    Fit: the mean difference (stereotype - anti-stereotype, averaged from the first differing token) on
    the contrast's training targets at ``layers``; the layer with the best held-out separability; the sign
    fixed so that a positive multiplier pushes toward the stereotype. Then the debiasing multiplier: of
    ``multipliers`` (non-zero; negative: toward the anti-stereotype, positive: toward the stereotype, for a
    model that already prefers the anti-stereotype), the one whose steered preference on
    ``n_calibration`` training pairs (mean per-token log P(stereotype) - log P(anti-stereotype), nats) is
    closest to 0, the unbiased point. Applied at that layer at every position (raw-text benchmarks have no
    instruction end). Only training targets are used: the scoreboard scores StereoSet on the others.
    """
    if not multipliers or 0 in multipliers:
        raise InputError(f"multipliers must be non-zero (the unsteered model is the baseline), got {list(multipliers)}")
    key = _key(
        model,
        "steering",
        seed,
        bias_type=bias_type,
        layers=list(layers),
        multipliers=list(multipliers),
        n_pairs=n_pairs,
        n_test=n_test,
        n_calibration=n_calibration,
    )

    def fit() -> tuple[list[SavableIntervention], dict[str, Any]]:
        fitted, calibration, measure = _oriented_bias_vector(
            model,
            bias_type,
            layers,
            max(abs(m) for m in multipliers),
            n_pairs,
            n_test,
            n_calibration,
            seed,
            batch_size,
            progress,
        )
        assert fitted.layer is not None
        layer = fitted.layer
        steered = {m: measure([AddVector(fitted.vector, m, [layer], start=None)]) for m in multipliers}
        best = min(multipliers, key=lambda m: abs(steered[m]))
        details = {
            **fitted.summary(),
            "layer": layer,
            "multiplier": best,
            "relative_multiplier": fitted.vector.relative_multiplier(best, layer),
            "calibration": {
                "unsteered": measure([]),
                "steered": {str(m): v for m, v in steered.items()},
                "n_pairs": len(calibration),
                "pairs": fingerprint(calibration),
            },
        }
        return [AddVector(fitted.vector, best, [layer], start=None)], details

    interventions, details, paths = reuse_or_fit(folder, f"steer-{bias_type}", key, fit)
    return Candidate(f"steer {bias_type}", "steering", tuple(interventions), artefacts=paths, details=details)


def redteam_candidate(
    model: HookedTransformer,
    bias_type: str,
    folder: str | Path,
    *,
    layers: Sequence[int],
    bias_multiplier: float = 4.0,
    refusal_multiplier: float = -0.5,
    n_pairs: int | None = 100,
    n_test: int | None = 40,
    seed: int = 0,
    batch_size: int = 16,
    progress: bool = False,
) -> Candidate:
    """The steering study's refusal-aware red-teaming combination: the bias vector of ``bias_type`` pushed
    toward the stereotype (``+bias_multiplier``) plus the refusal vector pushed away from refusing
    (``refusal_multiplier`` < 0), both at their best held-out layers and every position. Not a debiasing
    method: it shows how much bias the same directions can elicit, the scoreboard's stress row."""
    if bias_multiplier <= 0 or refusal_multiplier >= 0:
        raise InputError(
            "Red-teaming pushes toward the stereotype and away from refusal: bias_multiplier > 0 and "
            f"refusal_multiplier < 0, got {bias_multiplier} and {refusal_multiplier}."
        )
    key = _key(
        model,
        "redteam",
        seed,
        bias_type=bias_type,
        layers=list(layers),
        bias_multiplier=bias_multiplier,
        refusal_multiplier=refusal_multiplier,
        n_pairs=n_pairs,
        n_test=n_test,
    )

    def fit() -> tuple[list[SavableIntervention], dict[str, Any]]:
        bias, _, _ = _oriented_bias_vector(
            model, bias_type, layers, bias_multiplier, n_pairs, n_test, 32, seed, batch_size, progress
        )
        refusal = refusal_vector(model, layers, seed=seed, batch_size=batch_size)
        assert bias.layer is not None and refusal.layer is not None
        details = {
            "bias": {**bias.summary(), "layer": bias.layer, "multiplier": bias_multiplier},
            "refusal": {**refusal.summary(), "layer": refusal.layer, "multiplier": refusal_multiplier},
        }
        return [
            AddVector(bias.vector, bias_multiplier, [bias.layer], start=None),
            AddVector(refusal.vector, refusal_multiplier, [refusal.layer], start=None),
        ], details

    interventions, details, paths = reuse_or_fit(folder, f"redteam-{bias_type}", key, fit)
    return Candidate(
        f"red-team {bias_type} (+bias, -refusal)", "red-teaming", tuple(interventions), artefacts=paths, details=details
    )


def head_ablation_candidate(
    model: HookedTransformer,
    folder: str | Path,
    *,
    heads_file: str | Path | None = None,
    attribute: str = "reckless_driving",
    seeds: Sequence[int] = (0, 1, 2),
    steps: int = 100,
    k: int = 5,
    min_runs: int | None = None,
    n_templates: int | None = None,
    scale: float = 0.0,
    batch_size: int = 16,
    progress: bool = False,
) -> Candidate:
    """BiasScope's selected heads scaled by ``scale`` (0 = ablation).

    With ``heads_file`` (the ``selected_heads.json`` that ``python -m experiments.biasscope`` saves) its
    heads are used; otherwise they are fitted here as the experiment does: one injection of ``attribute``
    per seed (``steps`` training steps), every head scored by activation patching, the heads in the top
    ``k`` of at least ``min_runs`` runs (default a majority) kept (:mod:`lens_bias.localize.runs`)."""
    if heads_file is not None:
        if not Path(heads_file).is_file():
            raise InputError(
                f"{heads_file}: no BiasScope head selection there; run `python -m experiments.biasscope` first (it "
                "writes figures/biasscope/selected_heads.json), pass its path, or leave it out to fit the heads."
            )
        saved = load_intervention(heads_file)
        if not isinstance(saved, HeadScaling):
            raise InputError(f"{heads_file} holds a {saved.describe()['kind']}, not a head scaling.")
        heads, details, paths = saved.heads, {"source": str(heads_file)}, [str(heads_file)]
    else:
        specs = {spec.name: spec for spec in injection_specs()}
        if attribute not in specs:
            raise InputError(f"Unknown BiasInject attribute {attribute!r}; choose from {sorted(specs)}.")
        key = _key(
            model,
            "biasscope",
            seeds[0] if seeds else 0,
            attribute=attribute,
            seeds=list(seeds),
            steps=steps,
            k=k,
            min_runs=min_runs,
            n_templates=n_templates,
        )

        def fit() -> tuple[list[SavableIntervention], dict[str, Any]]:
            runs = injection_runs(
                model,
                specs[attribute],
                seeds,
                steps=steps,
                n_templates=n_templates,
                batch_size=batch_size,
                progress=progress,
            )
            recurring = selected_heads(runs, k, min_runs)
            details = {
                "attribute": attribute,
                "counts": recurring.counts.tolist(),
                "min_runs": recurring.min_runs,
                "adversarial": [run.adversarial for run in runs],
            }
            return [HeadScaling(tuple(recurring.heads), 0.0)], details

        (fitted,), details, paths = reuse_or_fit(folder, f"biasscope-{attribute}", key, fit)
        assert isinstance(fitted, HeadScaling)
        heads = fitted.heads
    ablation = HeadScaling(heads, scale)
    ablation.check(model)
    return Candidate(
        f"BiasScope heads x{scale:g}",
        "head ablation",
        (ablation,),
        artefacts=paths,
        details={**details, "heads": [list(h) for h in heads], "scale": scale},
    )


def alignez_candidate(
    model: HookedTransformer,
    folder: str | Path,
    *,
    method: str = "svd",
    layers: Sequence[int] | None = None,
    strength: float = 10.0,
    top_layers: int = 5,
    max_new_tokens: int = 96,
    seed: int = 0,
    batch_size: int = 16,
    progress: bool = False,
) -> Candidate:
    """AlignEZ: self-generated preference pairs (:func:`lens_bias.debias.alignez.load_or_generate`, saved in
    ``{folder}/alignez_pairs.json`` and reused), the helpful-minus-harmful directions by ``method`` (``"svd"``
    or ``"ccs"``) at ``layers`` (default every layer), and the edit: boost the helpful subspace with
    ``strength`` (``x + w_s Σ tanh(v·x) v``) and neutralise its opposite, the harmful side
    (``x - Σ relu(-v·x)(-v)``).

    Layers: the reference picks, per query, the ``top_layers`` layers whose subspace the query aligns with
    most. Benchmarks compare the likelihoods of several options of one item, which must be edited alike, so
    here the layers are picked once: the ``top_layers`` layers with the highest mean alignment of the
    AlignEZ questions themselves (:meth:`lens_bias.interventions.SubspaceEdit.alignment` at the end of the
    instruction), the same for every item scored."""
    from lens_bias.data.alignez_questions import alignez_questions
    from lens_bias.debias.alignez import DirectionMethod, alignez_subspace, load_or_generate
    from lens_bias.directions import Subspace
    from lens_bias.interventions import SubspaceEdit
    from lens_bias.prompts import chat_batch, template_for

    if method not in ("svd", "ccs"):
        raise InputError(f"AlignEZ method must be 'svd' or 'ccs', got {method!r}.")
    candidates = list(range(model.cfg.n_layers)) if layers is None else list(layers)
    if not 1 <= top_layers <= len(candidates):
        raise InputError(f"top_layers must be between 1 and the {len(candidates)} candidate layers, got {top_layers}.")
    questions = alignez_questions()
    data = load_or_generate(
        model,
        questions,
        Path(folder) / "alignez_pairs.json",
        max_new_tokens=max_new_tokens,
        seed=seed,
        batch_size=batch_size,
        progress=progress,
    )
    key = _key(
        model,
        f"alignez-{method}",
        seed,
        layers=candidates,
        strength=strength,
        top_layers=top_layers,
        pairs=fingerprint(data.pairs()),
    )

    def fit() -> tuple[list[SavableIntervention], dict[str, Any]]:
        subspace = alignez_subspace(
            model,
            data,
            candidates,
            method=cast(DirectionMethod, method),
            seed=seed,
            batch_size=batch_size,
            progress=progress,
        )
        template = template_for(model)
        batch = chat_batch(model.tokenizer, template, [q.text for q in questions])
        alignment = SubspaceEdit(subspace, "boost").alignment(model, batch).mean(0)
        chosen = sorted(candidates[i] for i in alignment.argsort(descending=True, stable=True)[:top_layers].tolist())
        harmful = Subspace(
            {layer: -basis for layer, basis in subspace.bases.items()},
            subspace.hook,
            subspace.variance,
            {**subspace.provenance, "side": "harmful (the negated helpful basis)"},
        )
        details = {
            "layers": chosen,
            "mean_alignment": dict(zip(candidates, alignment.tolist())),
            "dims": {layer: int(subspace.bases[layer].shape[0]) for layer in chosen},
            "well_formed_share": data.well_formed_share,
            "n_pairs": len(data.pairs()),
            "subspace": subspace.provenance,
        }
        return [SubspaceEdit(subspace, "boost", chosen, strength), SubspaceEdit(harmful, "remove", chosen)], details

    interventions, details, paths = reuse_or_fit(folder, f"alignez-{method}", key, fit)
    return Candidate(
        f"AlignEZ {method.upper()} x{strength:g}",
        "alignez",
        tuple(interventions),
        artefacts=[str(Path(folder) / "alignez_pairs.json"), *paths],
        details=details,
    )


def finetune_candidate(
    source: str,
    folder: str | Path,
    *,
    data: str | Path | None = None,
    held_out: float = 0.3,
    max_steps: int | None = None,
    seed: int = 0,
    device: str | None = None,
    progress: bool = False,
) -> Candidate:
    """The SR_LLM-recipe LoRA fine-tune of ``source`` (what :func:`lens_bias.models.load_model` accepts) on
    the train side of the rewrite pairs of ``data`` (None: the project's own set), merged and saved in
    ``{folder}/lora`` (reused while recipe, data, base and ``max_steps`` hold), loaded back as a model.

    The loaded model's record gets ``revision`` = the fine-tune's key hash: a folder's record names only its
    path, and a retrained folder must not reuse the scoring cells of the old weights."""
    import hashlib

    from lens_bias.debias.lora import LoraRecipe, finetune_lora
    from lens_bias.debias.rewrites import load_rewrite_pairs, split_rewrites
    from lens_bias.models import attach_record, load_model

    train, _ = split_rewrites(load_rewrite_pairs(data), held_out=held_out, seed=seed)
    result = finetune_lora(
        source, train, LoraRecipe(seed=seed), Path(folder) / "lora", progress=progress, max_steps=max_steps
    )
    model = load_model(str(result.folder), device=device)
    fit = {name: result.to_dict()[name] for name in ("recipe", "data", "base", "max_steps")}
    key = json.dumps(_normal(fit), sort_keys=True)
    attach_record(model, replace(model_record(model), revision=hashlib.sha256(key.encode()).hexdigest()[:16]))
    details = {k: v for k, v in result.to_dict().items() if k != "losses"}
    details["loss_first_last"] = [result.losses[0], result.losses[-1]]
    return Candidate(
        "LoRA fine-tune (SR_LLM recipe)", "fine-tuning", model=model, artefacts=[str(result.folder)], details=details
    )
