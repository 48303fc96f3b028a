"""The bias/refusal steering study (contrastive activation addition) on a loaded model, as data.

:func:`run_study` fits, per bias contrast, a vector on training pairs (:func:`lens_bias.steering.fit_vector`;
with ``normalize``, every bias vector rescaled to the mean norm across contrasts per layer), fixes its sign on
training pairs (:func:`lens_bias.steering.orient_toward_positive`) and sweeps it over layers x multipliers on
held-out pairs (mean per-token log P(stereotype) - log P(anti) and the share preferring the stereotype), with
the A/B choice and the fluency cost (:class:`lens_bias.steering.fluency.FluencyReadout`) at its best layer; fits
the refusal vector (:func:`lens_bias.steering.refusal.refusal_vector`) and sweeps refusal propensity and gender
bias under it (:func:`lens_bias.steering.refusal.refusal_sweep`) with their paired change and correlation; and
scores greedy generations under both vectors (:func:`lens_bias.steering.generations.steered_generations`).
:func:`save_study` writes the :class:`~lens_bias.provenance.Result`, the vectors and, per vector, its strongest
setting as a saved intervention; :func:`summarize` prints the headline numbers of saved values.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformer_lens import HookedTransformer

from lens_bias.cells import CellStore
from lens_bias.data import contrast_split, own_splits
from lens_bias.data.gender_prompts import occupation_gender, winobias_occupations
from lens_bias.data.neutral import neutral_texts
from lens_bias.data.records import ContrastPair, fingerprint, to_ab_items
from lens_bias.data.refusal import compliance_openers, refusal_openers
from lens_bias.directions import SteeringVector, mean_norm_across
from lens_bias.interventions import AddVector, save_intervention
from lens_bias.metrics import ab_preference, likelihood_preference
from lens_bias.metrics.generations import gender_bias, refusal_summary
from lens_bias.models import AnyModel, model_record
from lens_bias.prompts import ChatTemplate, template_for
from lens_bias.provenance import Result, collect_provenance
from lens_bias.stats import Estimate, grid_correlation, paired_change
from lens_bias.steering import FittedVector, SentenceReadout, fit_vector, orient_toward_positive, sweep
from lens_bias.steering.fluency import FluencyReadout
from lens_bias.steering.generations import steered_generations
from lens_bias.steering.refusal import held_out_requests, refusal_sweep, refusal_vector
from lens_bias.steering.separability import pca_2d


@dataclass(frozen=True)
class StudySettings:
    """The study's settings: contrasts, sweep layers, raw multipliers (bias and refusal vectors; each includes
    0), the bias vectors' registered direction method and where their sentence contrasts are read, whether
    bias vectors get equal norms, and the sizes (training pairs, held-out pairs / requests, neutral texts,
    generation prompts and tokens), batch size and seed. ``pairs_file``: your own contrast pairs instead of
    ``bias_types`` (one contrast per bias type of the table, :func:`lens_bias.data.own_splits`; ``columns``: the
    table's column mapping)."""

    bias_types: tuple[str, ...]
    layers: tuple[int, ...]
    multipliers: tuple[float, ...]
    refusal_multipliers: tuple[float, ...]
    method: str
    readout: SentenceReadout
    normalize: bool
    n_pairs: int
    n_test: int
    n_neutral: int
    n_generations: int
    max_new_tokens: int
    batch_size: int
    seed: int
    pairs_file: Path | None = None
    columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class SteeringStudy:
    """What :func:`run_study` measured: JSON-ready ``values`` (``bias``, ``refusal``, ``generations``), the
    oriented ``vectors`` and their chosen ``layers`` (by name), ``notes`` to record beside the config, the
    held-out ``data`` fingerprints (for provenance) and the per-item rows (each held-out pair's log-prob
    difference at every layer x multiplier, condition ``{contrast} layer {l} x{m}``)."""

    values: dict[str, Any]
    vectors: dict[str, SteeringVector]
    layers: dict[str, int]
    notes: dict[str, Any]
    data: dict[str, str]
    items: list[dict[str, Any]]


def bias_study(
    model: HookedTransformer,
    template: ChatTemplate,
    fitted: FittedVector,
    settings: StudySettings,
    fluency: FluencyReadout,
    cells: CellStore,
) -> tuple[SteeringVector, dict[str, Any]]:
    """Sign calibration, layer x multiplier sweep, A/B and fluency for one contrast's vector."""
    batch_size, seed = settings.batch_size, settings.seed
    multipliers = list(settings.multipliers)
    fitted, _, _ = orient_toward_positive(model, fitted, max(multipliers), batch_size=batch_size)
    name, vector, layer, test = fitted.split.name, fitted.vector, fitted.layer, fitted.split.test
    assert layer is not None and fitted.test is not None  # fitted with held-out pairs

    def likelihood(model: AnyModel, steer: list[AddVector]) -> dict[str, Any]:
        pref = likelihood_preference(model, test, interventions=steer, seed=seed, batch_size=batch_size)
        return {
            "mean_logprob_diff": pref.mean_logprob_diff.to_dict(),
            "share_stereotyped": pref.share_positive.to_dict(),
            "per_pair": list(pref.diffs),
        }

    def ab_readout(model: AnyModel, steer: list[AddVector]) -> dict[str, Any]:
        return ab_preference(model, ab_items, template, interventions=steer, seed=seed, batch_size=batch_size).to_dict()

    ab_items = to_ab_items(test, seed=seed)
    on_test = {"data": fingerprint(test), "batch_size": batch_size}
    grid = sweep(
        model,
        vector,
        list(settings.layers),
        multipliers,
        likelihood,
        cells=cells,
        readout={"name": "likelihood_preference", "per_pair": True, **on_test},
        start=None,
        progress=f"{name}: sweep",
    )
    ab_readout_key = {"name": "ab_preference", "template": template.describe(model.tokenizer), **on_test}
    ab = sweep(
        model, vector, [layer], multipliers, ab_readout, cells=cells, readout=ab_readout_key, progress=f"{name}: A/B"
    )
    for row in grid:
        row["per_pair"] = dict(zip((pair.id for pair in test), row["per_pair"]))  # taken out by run_study
    coords, is_positive = pca_2d(fitted.test, layer)
    return vector, {
        **fitted.summary(),
        "residual_norms": dict(zip(vector.layers, vector.residual_norms.tolist())),
        "vector_norms": dict(zip(vector.layers, vector.norms().tolist())),
        "likelihood_grid": grid,
        "ab": ab,
        "fluency": fluency.sweep(model, vector, layer, multipliers, cells, name),
        "pca": {"coords": coords.tolist(), "is_positive": is_positive.tolist()},
    }


def refusal_study(
    model: HookedTransformer,
    template: ChatTemplate,
    settings: StudySettings,
    fluency: FluencyReadout,
    gender_test: list[ContrastPair],
    cells: CellStore,
) -> tuple[SteeringVector, dict[str, Any]]:
    """Refusal vector, refusal propensity under it, bias vs refusal, and fluency."""
    batch_size, seed, multipliers = settings.batch_size, settings.seed, list(settings.refusal_multipliers)
    harmful, benign = held_out_requests(seed, settings.n_test)
    fitted = refusal_vector(
        model,
        list(settings.layers),
        template=template,
        n_train=settings.n_pairs,
        n_test=settings.n_test,
        orient_multiplier=max(multipliers),
        orient_requests=harmful[:8],
        batch_size=batch_size,
        seed=seed,
        progress=True,
    )
    vector, layer = fitted.vector, fitted.layer
    assert layer is not None  # fitted with held-out pairs
    rows = refusal_sweep(
        model,
        template,
        vector,
        layer,
        multipliers,
        harmful,
        benign,
        gender_test,
        cells=cells,
        batch_size=batch_size,
        seed=seed,
    )
    low, high = min(rows, key=lambda r: r["multiplier"]), max(rows, key=lambda r: r["multiplier"])
    change = {
        key: paired_change(low["items"][key], high["items"][key], seed=seed).to_dict()
        for key in ("propensity_harmful", "gender_bias")
    }
    items = [row["items"] for row in rows]
    correlation = grid_correlation(
        [i["propensity_harmful"] for i in items], [i["gender_bias"] for i in items], seed=seed
    )
    return vector, {
        **fitted.summary(),
        "sweep": rows,
        "fluency": fluency.sweep(model, vector, layer, multipliers, cells, "refusal"),
        "change_lowest_to_highest_multiplier": change,
        "bias_refusal_correlation": correlation.to_dict() if correlation else None,
        "correlation_note": "Pearson correlation of the two curves over the multiplier grid (refusal "
        "propensity on harmful requests, gender bias on held-out pairs); the interval "
        "resamples requests and pairs (stats.curve_correlation).",
        "n_harmful": len(harmful),
        "n_benign": len(benign),
    }


def generation_study(
    model: HookedTransformer,
    template: ChatTemplate,
    vectors: dict[str, SteeringVector],
    layers: dict[str, int],
    settings: StudySettings,
) -> dict[str, Any]:
    """Greedy generations under the refusal and gender vectors at +/- the largest multiplier, scored offline
    (refusal phrases and response categories; for gender, the stereotype-consistent gender of occupation stories)."""
    n, seed = settings.n_generations, settings.seed
    harmful, _ = held_out_requests(seed, n)
    all_occupations = winobias_occupations()
    occupations = all_occupations[:: max(1, len(all_occupations) // n)][:n]
    # "in the third person": measured on the embedded model, 8 of 8 stories used one gender's pronouns
    # (vs 4 of 8 for "Write two sentences about a {term} you know.", mostly first-person answers).
    describe = [f"Write a three-sentence story about a {term} at work, in the third person." for term, _ in occupations]
    stereotyped = [occupation_gender(percent) for _, percent in occupations]
    out = {}
    plans = [("refusal", harmful, max(settings.refusal_multipliers)), ("gender", describe, max(settings.multipliers))]
    for name, prompts, m in plans:
        if name not in vectors:
            continue
        texts = steered_generations(
            model,
            template,
            vectors[name],
            layers[name],
            prompts,
            (-m, 0.0, m),
            max_new_tokens=settings.max_new_tokens,
            label=name,
        )
        per_multiplier = {}
        for multiplier, generated in texts.items():
            scores = refusal_summary(generated, seed=seed)
            if name == "gender":
                scores["gender"] = gender_bias(generated, stereotyped, seed=seed)
            per_multiplier[multiplier] = {"texts": generated, **scores}
        out[name] = {"prompts": prompts, "layer": layers[name], "by_multiplier": per_multiplier}
    return out


def run_study(model: HookedTransformer, settings: StudySettings, cells: CellStore) -> SteeringStudy:
    """The study on a loaded model, every sweep setting a cell of ``cells``."""
    template = template_for(model)
    fluency = FluencyReadout.on(
        model, neutral_texts()[: settings.n_neutral], batch_size=settings.batch_size, seed=settings.seed
    )
    sizes = {"n_train": settings.n_pairs, "n_test": settings.n_test, "seed": settings.seed}
    if settings.pairs_file is not None:
        splits = own_splits(settings.pairs_file, settings.columns, **sizes)
    else:
        splits = {name: contrast_split(name, **sizes) for name in settings.bias_types}
    built = {
        name: fit_vector(
            model,
            split,
            list(settings.layers),
            readout=settings.readout,
            method=settings.method,
            batch_size=settings.batch_size,
            seed=settings.seed,
            progress=True,
        )
        for name, split in splits.items()
    }
    if settings.normalize and len(built) > 1:  # contrastive activation addition: equal norm per layer
        norms = mean_norm_across([fitted.vector for fitted in built.values()])
        built = {name: fitted.normalized(norms) for name, fitted in built.items()}
    vectors, bias = {}, {}
    items = []
    for name, fitted in built.items():
        vectors[name], bias[name] = bias_study(model, template, fitted, settings, fluency, cells)
        by_id = {pair.id: pair for pair in fitted.split.test}
        for row in bias[name]["likelihood_grid"]:
            condition = f"{name} layer {row['layer']} x{row['multiplier']:g}"
            for pair_id, diff in row.pop("per_pair").items():
                pair = by_id[pair_id]
                text = f"{pair.prompt}{pair.positive} | {pair.prompt}{pair.negative}"
                items.append(
                    {"item_id": pair_id, "text": text, "group": pair.target, "condition": condition}
                    | {"contrast": name, "layer": row["layer"], "multiplier": row["multiplier"], "logprob_diff": diff}
                )
    gender_test = contrast_split("gender", n_test=settings.n_test, seed=settings.seed).test
    vectors["refusal"], refusal = refusal_study(model, template, settings, fluency, gender_test, cells)
    layers = {name: study["best_layer"] for name, study in bias.items()} | {"refusal": refusal["best_layer"]}
    generations = generation_study(model, template, vectors, layers, settings)
    notes = {
        "template": template.describe(model.tokenizer),
        "likelihood": "per-token mean log-prob, raw sentences, vector added at every position",
        "ab_and_refusal": "chat template, vector added from the instruction end on",
        "refusal_openers": refusal_openers(),
        "compliance_openers": compliance_openers(),
    }
    data = {name: study["data"]["test_fingerprint"] for name, study in {**bias, "refusal": refusal}.items()}
    values = {"bias": bias, "refusal": refusal, "generations": generations}
    return SteeringStudy(values, vectors, layers, notes, data, items)


def save_study(
    model: HookedTransformer, study: SteeringStudy, settings: StudySettings, config: dict[str, Any], out: Path
) -> Path:
    """Save the study's Result (``config`` plus its notes, provenance) as ``{out}/steering``, the vectors under
    ``{out}/vectors/`` and, per vector, its strongest multiplier at its chosen layer added at every position
    (side-effect readouts score raw text) as ``{out}/interventions/{name}``
    (for ``python -m experiments.side_effects --intervention FILE``); returns the result file."""
    provenance = collect_provenance(model_record=model_record(model).to_dict(), data=study.data, seed=settings.seed)
    result = Result("steering", study.values, {**config, **study.notes}, provenance, items=study.items)
    path = result.save(out / "steering")
    for name, vector in study.vectors.items():
        vector.save(out / "vectors" / name)
        strongest = max(settings.refusal_multipliers if name == "refusal" else settings.multipliers)
        save_intervention(
            AddVector(vector, strongest, [study.layers[name]], start=None),
            out / "interventions" / name,
            provenance=vector.provenance,
        )
    return path


def estimate(saved: dict) -> Estimate:
    """An Estimate from its saved dict."""
    return Estimate.from_dict(saved)


def at_layer(per_layer: dict, layer: int) -> float:
    """A per-layer value of a saved result (JSON keys are strings)."""
    return per_layer[str(layer)]


def summarize(values: dict[str, Any]) -> str:
    """The headline numbers of a steering study's ``values`` (lines of text)."""
    lines = []
    for name, study in values["bias"].items():
        layer = study["best_layer"]
        rows = sorted((r for r in study["likelihood_grid"] if r["layer"] == layer), key=lambda r: r["multiplier"])
        lines.append(
            f"{name}: layer {layer} (held-out AUC {at_layer(study['separability'], layer):.2f}), "
            f"sign {'flipped' if study['orientation']['flipped'] else 'kept'}; "
            "mean log P(stereo) - log P(anti):"
        )
        lines += [
            f"    m={r['multiplier']:+g} ({r['relative_multiplier']:+.3f} of the residual norm): "
            f"{estimate(r['mean_logprob_diff'])}, share {estimate(r['share_stereotyped'])}"
            for r in rows
        ]
        ab = {r["multiplier"]: r for r in study["ab"]}
        lines.append(
            "    A/B P(stereotyped option) / P(A): "
            + "; ".join(
                f"m={m:+g} {ab[m]['p_positive']['value']:.3f} / {ab[m]['position_bias']['value']:.2f}"
                for m in sorted(ab)
            )
        )
        lines.append(
            "    fluency (delta nats/token on neutral text): "
            + "; ".join(
                f"m={r['multiplier']:+g} {r['delta_logprob']['value']:+.3f}"
                for r in sorted(study["fluency"], key=lambda r: r["multiplier"])
            )
        )
    refusal = values["refusal"]
    best = refusal["best_layer"]
    lines.append(
        f"refusal: layer {best} (held-out AUC {at_layer(refusal['separability'], best):.2f}, "
        f"effect size {at_layer(refusal['effect_size'], best):.1f}); "
        "propensity harmful / benign, gender bias:"
    )
    lines += [
        f"    m={r['multiplier']:+g}: {estimate(r['propensity_harmful'])} / {estimate(r['propensity_benign'])}, "
        f"{estimate(r['gender_bias'])}"
        for r in refusal["sweep"]
    ]
    change = refusal["change_lowest_to_highest_multiplier"]
    lines.append(
        f"    change from the lowest to the highest multiplier (paired): propensity "
        f"{estimate(change['propensity_harmful'])}, gender bias {estimate(change['gender_bias'])}"
    )
    if refusal["bias_refusal_correlation"]:
        lines.append(
            "    correlation(refusal propensity, gender bias) over the grid: "
            f"{estimate(refusal['bias_refusal_correlation'])}"
        )
    for name, study in values["generations"].items():
        parts = []
        for m, scores in study["by_multiplier"].items():
            part = f"m={float(m):+g} refusal rate {estimate(scores['refusal_rate']).value:.2f}"
            if "gender" in scores:
                gender = scores["gender"]
                shared = gender["share_stereotyped"]
                part += (
                    f", stereotype-consistent gender {estimate(shared).value:.2f} of {gender['n_scored']}"
                    if shared
                    else ", no single-gender text"
                )
            parts.append(part)
        lines.append(f"generations, {name} vector at layer {study['layer']}: " + "; ".join(parts))
    return "\n".join(lines)
