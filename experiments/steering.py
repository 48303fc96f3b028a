"""The bias/refusal steering study (contrastive activation addition), on any loaded model.

For each bias contrast (StereoSet gender/race/religion/profession, the project's gender prompt set) and a
refusal contrast, on training pairs split by target term:
  1. paired residual activations at the sweep layers -> a mean-difference steering vector per layer;
  2. held-out separability per layer (AUC of the projection on the vector) -> the default layer;
     PCA of positive vs negative activations there;
  3. the sign fixed by measurement on training pairs (positive multiplier = toward the named side);
  4. bias under steering on held-out pairs for every layer x multiplier: mean log P(stereotype) -
     log P(anti-stereotype) (per-token mean) and the share preferring the stereotype; at the default
     layer also the A/B choice P(stereotyped option) with the position bias;
  5. refusal under the refusal vector: refusal propensity (log sum P(refusal openers) - log sum
     P(compliance openers)) on held-out harmful and benign requests; bias vs refusal over the refusal
     vector's multipliers with their correlation;
  6. side effects: change in mean log-probability of neutral held-out text for every steering setting;
  7. open-ended generations with vectors applied, scored offline (refusal phrases, response categories,
     gendered words in stories about occupations).
Writes ``{out}/steering.json``, the vectors (``{out}/vectors/``), each vector at its chosen layer and largest
multiplier, added at every position, as a saved intervention (``{out}/interventions/{name}.json``, for
``experiments.side_effects``) and
figures to ``{out}/`` (HTML and PNG).

    python -m experiments.steering [--model NAME] [--quick]
    python -m experiments.steering --replot figures/steering/steering.json
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import plotly.graph_objects as go
from transformer_lens import HookedTransformer

from experiments import cli
from lens_bias.cache import key_sha256
from lens_bias.cells import CellStore, model_key
from lens_bias.data import contrast_split
from lens_bias.data.gender_prompts import occupation_gender, winobias_occupations
from lens_bias.data.neutral import neutral_texts
from lens_bias.data.records import ContrastPair, fingerprint, split_by_target, to_ab_items
from lens_bias.data.refusal import compliance_openers, refusal_openers, refusal_requests
from lens_bias.directions import SteeringVector, mean_norm_across
from lens_bias.errors import InputError
from lens_bias.figures.primitives import heatmap, lines_with_ci, save_figures
from lens_bias.forward.generation import generate
from lens_bias.forward.readouts import continuation_logprobs, refusal_propensity, score_pairs
from lens_bias.interventions import AddVector, save_intervention
from lens_bias.metrics import ab_preference, likelihood_preference
from lens_bias.metrics.generations import gender_bias, refusal_summary
from lens_bias.models import AnyModel, check_layers, load_model, model_record
from lens_bias.prompts import ChatTemplate, template_for
from lens_bias.provenance import Result, collect_provenance, set_seed
from lens_bias.stats import Estimate, bootstrap_mean, curve_correlation, share
from lens_bias.steering import FittedVector, SentenceReadout, fit_vector, preference_measure, sweep
from lens_bias.steering.separability import pca_2d

BIAS_CONTRASTS = ("gender", "race", "religion", "profession", "gender-prompts")
READOUTS = ("mean_from_difference", "last")


@dataclass(frozen=True)
class Neutral:
    """The fluency readout of a sweep: the change (nats per token) of the mean per-token log-probability of
    neutral texts under steering, against their unsteered ``base`` scores ``[n_texts]``."""

    texts: tuple[str, ...]
    base: np.ndarray
    batch_size: int
    seed: int

    @property
    def readout(self) -> dict[str, Any]:
        """What identifies this readout in a sweep's cell keys."""
        return {"name": "neutral_delta_logprob", "texts": key_sha256({"texts": self.texts}), "batch": self.batch_size}

    def sweep(
        self, model: AnyModel, vector: SteeringVector, layer: int, multipliers: list[float], cells: CellStore, name: str
    ) -> list[dict[str, Any]]:
        """The fluency cost of ``vector`` added at every position of ``layer``, per multiplier."""
        return sweep(
            model,
            vector,
            [layer],
            multipliers,
            self.evaluate,
            cells=cells,
            readout=self.readout,
            start=None,
            progress=f"{name}: fluency",
        )

    def evaluate(self, model: AnyModel, steer: list[AddVector]) -> dict[str, Any]:
        texts = list(self.texts)
        scores = continuation_logprobs(model, [""] * len(texts), texts, interventions=steer, batch_size=self.batch_size)
        return {"delta_logprob": bootstrap_mean(scores.mean.numpy() - self.base, seed=self.seed).to_dict()}


@dataclass(frozen=True)
class Config(cli.SweepConfig):
    """The steering study's settings (see the module docstring for what each step measures)."""

    bias_types: tuple[str, ...] = field(
        default=BIAS_CONTRASTS, metadata={"choices": BIAS_CONTRASTS, "help": "bias contrasts to steer"}
    )
    layers: tuple[int, ...] = field(default=(4, 8, 12, 16, 20), metadata={"help": "the sweep layers"})
    # ints, as before the config: a multiplier is recorded as given (-4, not -4.0)
    multipliers: tuple[float, ...] = field(
        default=(-4, -2, 0, 2, 4),
        metadata={"help": "raw multipliers for the bias vectors (relative ones are reported); must include 0"},
    )
    refusal_multipliers: tuple[float, ...] = field(
        default=(-0.5, -0.25, 0, 0.25, 0.5), metadata={"help": "raw multipliers for the refusal vector; must include 0"}
    )
    readout: str = field(
        default="mean_from_difference",
        metadata={
            "choices": READOUTS,
            "help": "where sentence contrasts are read: averaged from the first differing token (default; ~5x "
            "larger, steerable vectors on the embedded model) or the last token",
        },
    )
    normalize: bool = field(
        default=True,
        metadata={
            "flag": "--raw-norms",
            "help": "keep each bias vector's own norm (default: rescale every bias vector to the mean norm across "
            "bias types at each layer, as contrastive activation addition does, so a multiplier means the "
            "same added norm for every bias type)",
        },
    )
    n_pairs: int = field(default=100, metadata={"help": "training pairs per contrast", "min": 1})
    n_test: int = field(default=40, metadata={"help": "held-out pairs / requests per contrast", "min": 1})
    n_neutral: int = field(default=40, metadata={"help": "neutral texts for the fluency check", "min": 1})
    n_generations: int = field(default=16, metadata={"help": "prompts per generation setting", "min": 1})
    max_new_tokens: int = field(default=40, metadata={"help": "tokens per generation", "min": 1})
    out: Path = Path("figures/steering")

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("bias_types", "layers"):
            if not getattr(self, name):
                raise InputError(f"--{name.replace('_', '-')} is empty: give at least one value.")
        unknown = [b for b in self.bias_types if b not in BIAS_CONTRASTS]
        if unknown:
            raise InputError(f"--bias-types {' '.join(unknown)}: unknown; choose from {', '.join(BIAS_CONTRASTS)}.")
        if self.readout not in READOUTS:
            raise InputError(f"--readout {self.readout}: unknown; choose from {', '.join(READOUTS)}.")
        for name in ("multipliers", "refusal_multipliers"):
            if 0 not in getattr(self, name):
                raise InputError(f"--{name.replace('_', '-')} must include 0 (the unsteered baseline).")


#: The defaults --quick changes (a smoke run in under 2 minutes on 2 CPU cores).
QUICK = {
    "bias_types": ["gender"],
    "layers": [8, 16],
    "multipliers": [-4, 0, 4],
    "refusal_multipliers": [-0.5, 0, 0.5],
    "n_pairs": 32,
    "n_test": 16,
    "n_neutral": 16,
    "n_generations": 3,
    "max_new_tokens": 16,
}


def bias_vector(model: HookedTransformer, name: str, config: Config) -> FittedVector:
    """The mean-difference vector of one contrast on its training pairs, measured on its held-out pairs."""
    split = contrast_split(name, n_train=config.n_pairs, n_test=config.n_test, seed=config.seed)
    readout = cast(SentenceReadout, config.readout)  # one of READOUTS (checked by the config)
    return fit_vector(
        model,
        split,
        list(config.layers),
        readout=readout,
        batch_size=config.batch_size,
        seed=config.seed,
        progress=True,
    )


def bias_study(
    model: HookedTransformer,
    template: ChatTemplate,
    fitted: FittedVector,
    config: Config,
    neutral: Neutral,
    cells: CellStore,
) -> tuple[SteeringVector, dict[str, Any]]:
    """Sign calibration, layer x multiplier sweep, A/B and fluency for one contrast's vector."""
    batch_size, seed = config.batch_size, config.seed
    layers, multipliers = list(config.layers), list(config.multipliers)
    split = fitted.split
    calibration = split.train[: min(32, len(split.train))]
    measure = preference_measure(model, calibration, batch_size=batch_size)
    fitted = fitted.oriented(measure, max(multipliers), start=None)
    name, vector, layer = split.name, fitted.vector, fitted.layer
    assert layer is not None and fitted.test is not None  # fitted with held-out pairs

    test = split.test

    def likelihood(model: AnyModel, steer: list[AddVector]) -> dict[str, Any]:
        pref = likelihood_preference(model, test, interventions=steer, seed=seed, batch_size=batch_size)
        return {
            "mean_logprob_diff": pref.mean_logprob_diff.to_dict(),
            "share_stereotyped": pref.share_positive.to_dict(),
        }

    def ab_readout(model: AnyModel, steer: list[AddVector]) -> dict[str, Any]:
        return ab_preference(model, ab_items, template, interventions=steer, seed=seed, batch_size=batch_size).to_dict()

    ab_items = to_ab_items(test, seed=seed)
    on_test = {"data": fingerprint(test), "batch_size": batch_size}
    grid = sweep(
        model,
        vector,
        layers,
        multipliers,
        likelihood,
        cells=cells,
        readout={"name": "likelihood_preference", **on_test},
        start=None,
        progress=f"{name}: sweep",
    )
    ab = sweep(
        model,
        vector,
        [layer],
        multipliers,
        ab_readout,
        cells=cells,
        readout={"name": "ab_preference", "template": template.describe(model.tokenizer), **on_test},
        progress=f"{name}: A/B",
    )
    fluency = neutral.sweep(model, vector, layer, multipliers, cells, name)
    coords, is_positive = pca_2d(fitted.test, layer)
    return vector, {
        **fitted.summary(),
        "residual_norms": dict(zip(vector.layers, vector.residual_norms.tolist())),
        "vector_norms": dict(zip(vector.layers, vector.norms().tolist())),
        "likelihood_grid": grid,
        "ab": ab,
        "fluency": fluency,
        "pca": {"coords": coords.tolist(), "is_positive": is_positive.tolist()},
    }


def refusal_study(
    model: HookedTransformer,
    template: ChatTemplate,
    config: Config,
    neutral: Neutral,
    gender_test: list[ContrastPair],
    cells: CellStore,
) -> tuple[SteeringVector, dict[str, Any]]:
    """Refusal vector, refusal propensity under it, bias vs refusal, and fluency."""
    batch_size, seed, multipliers = config.batch_size, config.seed, list(config.refusal_multipliers)
    split = contrast_split("refusal", n_train=config.n_pairs, n_test=config.n_test, seed=seed)
    _, held_out = split_by_target(refusal_requests(), 0.3, seed)
    harmful = [r.text for r in held_out if r.harmful][: config.n_test]
    benign = [r.text for r in held_out if not r.harmful][: config.n_test]

    def propensity(model: AnyModel, steer: list[AddVector], requests: list[str]) -> np.ndarray:
        return refusal_propensity(
            model,
            template,
            requests,
            refusal_openers(),
            compliance_openers(),
            interventions=steer,
            batch_size=batch_size,
        ).numpy()

    fitted = fit_vector(
        model,
        split,
        list(config.layers),
        template=template,
        seed=seed,
        progress=True,
        orient_by=lambda steer: float(propensity(model, steer, harmful[:8]).mean()),
        orient_multiplier=max(multipliers),
        batch_size=batch_size,
    )
    vector, layer = fitted.vector, fitted.layer
    assert layer is not None  # fitted with held-out pairs

    def evaluate(model: AnyModel, steer: list[AddVector]) -> dict[str, Any]:
        # The refusal vector is added from the instruction end in chat prompts; the gender pairs are raw
        # sentences, so there it is added at every position. Per-item scores are kept for the correlation.
        raw = [AddVector(s.vector, s.multiplier, s.layers, start=None) for s in steer]
        bias = score_pairs(model, gender_test, interventions=raw, batch_size=batch_size).preference().numpy()
        harmful_scores, benign_scores = propensity(model, steer, harmful), propensity(model, steer, benign)
        return {
            "propensity_harmful": bootstrap_mean(harmful_scores, seed=seed).to_dict(),
            "propensity_benign": bootstrap_mean(benign_scores, seed=seed).to_dict(),
            "gender_bias": bootstrap_mean(bias, seed=seed).to_dict(),
            "gender_share": share(bias > 0, seed=seed).to_dict(),
            "items": {"propensity_harmful": harmful_scores.tolist(), "gender_bias": bias.tolist()},
        }

    readout = {
        "name": "refusal_and_gender_bias",
        "template": template.describe(model.tokenizer),
        "harmful": key_sha256({"texts": harmful}),
        "benign": key_sha256({"texts": benign}),
        "gender": fingerprint(gender_test),
        "openers": [refusal_openers(), compliance_openers()],
        "batch_size": batch_size,
    }
    rows = sweep(model, vector, [layer], multipliers, evaluate, cells=cells, readout=readout, progress="refusal: sweep")
    low, high = min(rows, key=lambda r: r["multiplier"]), max(rows, key=lambda r: r["multiplier"])
    change = {
        key: bootstrap_mean(np.array(high["items"][key]) - np.array(low["items"][key]), seed=seed).to_dict()
        for key in ("propensity_harmful", "gender_bias")
    }
    correlation = None
    if len(rows) > 2:
        correlation = curve_correlation(
            np.array([r["items"]["propensity_harmful"] for r in rows]).T,
            np.array([r["items"]["gender_bias"] for r in rows]).T,
            seed=seed,
        )
    fluency = neutral.sweep(model, vector, layer, multipliers, cells, "refusal")
    return vector, {
        **fitted.summary(),
        "sweep": rows,
        "fluency": fluency,
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
    config: Config,
) -> dict[str, Any]:
    """Greedy generations under the refusal and gender vectors at +/- the largest multiplier."""
    n, seed = config.n_generations, config.seed
    _, held_out = split_by_target(refusal_requests(), 0.3, seed)
    harmful = [r.text for r in held_out if r.harmful][:n]
    all_occupations = winobias_occupations()
    occupations = all_occupations[:: max(1, len(all_occupations) // n)][:n]
    # "in the third person": measured on the embedded model, 8 of 8 stories used one gender's pronouns
    # (vs 4 of 8 for "Write two sentences about a {term} you know.", mostly first-person answers).
    describe = [f"Write a three-sentence story about a {term} at work, in the third person." for term, _ in occupations]
    stereotyped = [occupation_gender(percent) for _, percent in occupations]
    out = {}
    plans = [("refusal", harmful, max(config.refusal_multipliers)), ("gender", describe, max(config.multipliers))]
    for name, prompts, m in plans:
        if name not in vectors:
            continue
        per_multiplier = {}
        for multiplier in (-m, 0.0, m):
            steer = [AddVector(vectors[name], multiplier, [layers[name]])] if multiplier else []
            texts = [
                g.text
                for g in generate(
                    model,
                    template,
                    prompts,
                    interventions=steer,
                    batch_size=n,
                    max_new_tokens=config.max_new_tokens,
                    progress=f"{name} x{multiplier}",
                )
            ]
            scores = refusal_summary(texts, seed=seed)
            if name == "gender":
                scores["gender"] = gender_bias(texts, stereotyped, seed=seed)
            per_multiplier[str(multiplier)] = {"texts": texts, **scores}
        out[name] = {"prompts": prompts, "layer": layers[name], "by_multiplier": per_multiplier}
    return out


def _est(d: dict) -> Estimate:
    return Estimate.from_dict(d)


def _at(per_layer: dict, layer: int) -> float:
    """A per-layer value of a saved result (JSON keys are strings)."""
    return per_layer[str(layer)]


def summarize(result: Result) -> str:
    """The headline numbers of a saved result, as printed at the end of a run (and by ``--replot``)."""
    values, lines = result.values, []
    for name, study in values["bias"].items():
        layer = study["best_layer"]
        rows = sorted((r for r in study["likelihood_grid"] if r["layer"] == layer), key=lambda r: r["multiplier"])
        lines.append(
            f"{name}: layer {layer} (held-out AUC {_at(study['separability'], layer):.2f}), "
            f"sign {'flipped' if study['orientation']['flipped'] else 'kept'}; "
            "mean log P(stereo) - log P(anti):"
        )
        lines += [
            f"    m={r['multiplier']:+g} ({r['relative_multiplier']:+.3f} of the residual norm): "
            f"{_est(r['mean_logprob_diff'])}, share {_est(r['share_stereotyped'])}"
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
        f"refusal: layer {best} (held-out AUC {_at(refusal['separability'], best):.2f}, "
        f"effect size {_at(refusal['effect_size'], best):.1f}); "
        "propensity harmful / benign, gender bias:"
    )
    lines += [
        f"    m={r['multiplier']:+g}: {_est(r['propensity_harmful'])} / {_est(r['propensity_benign'])}, "
        f"{_est(r['gender_bias'])}"
        for r in refusal["sweep"]
    ]
    change = refusal["change_lowest_to_highest_multiplier"]
    lines.append(
        f"    change from the lowest to the highest multiplier (paired): propensity "
        f"{_est(change['propensity_harmful'])}, gender bias {_est(change['gender_bias'])}"
    )
    if refusal["bias_refusal_correlation"]:
        lines.append(
            "    correlation(refusal propensity, gender bias) over the grid: "
            f"{_est(refusal['bias_refusal_correlation'])}"
        )
    for name, study in values["generations"].items():
        parts = []
        for m, scores in study["by_multiplier"].items():
            part = f"m={float(m):+g} refusal rate {_est(scores['refusal_rate']).value:.2f}"
            if "gender" in scores:
                gender = scores["gender"]
                shared = gender["share_stereotyped"]
                part += (
                    f", stereotype-consistent gender {_est(shared).value:.2f} of {gender['n_scored']}"
                    if shared
                    else ", no single-gender text"
                )
            parts.append(part)
        lines.append(f"generations, {name} vector at layer {study['layer']}: " + "; ".join(parts))
    return "\n".join(lines)


def draw(result: Result) -> dict[str, go.Figure]:
    """Figures from a saved steering result."""
    values, model = result.values, result.provenance["model"]["name"]
    figures = {}
    for name, study in values["bias"].items():
        grid = study["likelihood_grid"]
        layers = sorted({row["layer"] for row in grid})
        multipliers = sorted({row["multiplier"] for row in grid})
        z = [
            [
                next(r["mean_logprob_diff"]["value"] for r in grid if r["layer"] == l and r["multiplier"] == m)
                for m in multipliers
            ]
            for l in layers
        ]
        figures[f"{name}_heatmap"] = heatmap(
            z,
            [str(m) for m in multipliers],
            [str(l) for l in layers],
            text_fmt=".2f",
            title=f"{name}: mean log P(stereotype) - log P(anti) on held-out pairs under steering ({model})",
            x_title="multiplier (raw)",
            y_title="layer",
        )
        pca = study["pca"]
        coords, positive = np.array(pca["coords"]), np.array(pca["is_positive"])
        fig = go.Figure(
            [
                go.Scatter(x=coords[mask, 0], y=coords[mask, 1], mode="markers", name=label)
                for mask, label in ((positive, "stereotype"), (~positive, "anti-stereotype"))
            ]
        )
        fig.update_layout(
            title=f"{name}: held-out activations at layer {study['best_layer']}, top-2 PCs ({model})",
            xaxis_title="PC 1",
            yaxis_title="PC 2",
        )
        figures[f"{name}_pca"] = fig
    sep = {name: study["separability"] for name, study in values["bias"].items()}
    sep["refusal"] = values["refusal"]["separability"]
    layers = sorted(int(l) for l in next(iter(sep.values())))
    figures["separability"] = lines_with_ci(
        layers,
        {n: [Estimate(_at(s, l), 0, 0, 0) for l in layers] for n, s in sep.items()},
        title=f"Held-out separability along each vector ({model})",
        x_title="layer",
        y_title="paired AUC (0.5 = chance)",
    )
    for series in figures["separability"].data:
        if series.fill:
            series.visible = False
    rows = values["refusal"]["sweep"]
    x = [r["multiplier"] for r in rows]
    figures["bias_vs_refusal"] = lines_with_ci(
        x,
        {
            "refusal propensity, harmful": [_est(r["propensity_harmful"]) for r in rows],
            "refusal propensity, benign": [_est(r["propensity_benign"]) for r in rows],
            "gender bias (mean log-prob diff)": [_est(r["gender_bias"]) for r in rows],
        },
        title=f"Refusal vector at layer {values['refusal']['best_layer']}: refusal and gender bias ({model})",
        x_title="refusal-vector multiplier (raw)",
        y_title="nats",
    )
    fluency = {name: study["fluency"] for name, study in values["bias"].items()}
    fluency["refusal"] = values["refusal"]["fluency"]
    figures["fluency"] = _fluency_figure(fluency, model)
    return figures


def _fluency_figure(fluency, model) -> go.Figure:
    fig = go.Figure()
    for name, rows in fluency.items():
        rows = sorted(rows, key=lambda r: r["relative_multiplier"])
        delta = [r["delta_logprob"] for r in rows]
        fig.add_trace(
            go.Scatter(
                x=[r["relative_multiplier"] for r in rows],
                y=[d["value"] for d in delta],
                error_y=dict(
                    type="data",
                    symmetric=False,
                    array=[d["high"] - d["value"] for d in delta],
                    arrayminus=[d["value"] - d["low"] for d in delta],
                ),
                mode="lines+markers",
                name=f"{name} (layer {rows[0]['layer']})",
            )
        )
    fig.update_layout(
        title=f"Fluency cost: change in mean log-prob of neutral text ({model})",
        xaxis_title="multiplier x |vector| / mean residual norm",
        yaxis_title="delta mean log-prob (nats/token)",
    )
    return fig


def run(config: Config) -> Path:
    """The study; saves the result, the vectors and the interventions; returns the result file."""
    set_seed(config.seed)
    model = load_model(config.model, device=config.device)
    check_layers(model, config.layers)  # before the first forward pass
    with cli.executor(config) as executor:
        return study(
            model,
            config,
            CellStore(config.out / "cells", {"model": model_key(model), "seed": config.seed}, executor=executor),
        )


def study(model: HookedTransformer, config: Config, cells: CellStore) -> Path:
    """The study on a loaded model, every sweep setting a cell of ``cells``; returns the result file."""
    template = template_for(model)
    texts = tuple(neutral_texts()[: config.n_neutral])
    base = continuation_logprobs(model, [""] * len(texts), list(texts), batch_size=config.batch_size).mean.numpy()
    neutral = Neutral(texts, base, config.batch_size, config.seed)
    built = {name: bias_vector(model, name, config) for name in config.bias_types}
    if config.normalize and len(built) > 1:  # contrastive activation addition: equal norm per layer
        norms = mean_norm_across([fitted.vector for fitted in built.values()])
        built = {name: fitted.normalized(norms) for name, fitted in built.items()}
    vectors, bias = {}, {}
    for name, fitted in built.items():
        vectors[name], bias[name] = bias_study(model, template, fitted, config, neutral, cells)
    gender_test = contrast_split("gender", n_test=config.n_test, seed=config.seed).test
    vectors["refusal"], refusal = refusal_study(model, template, config, neutral, gender_test, cells)
    layers = {name: study["best_layer"] for name, study in bias.items()} | {"refusal": refusal["best_layer"]}
    generations = generation_study(model, template, vectors, layers, config)
    recorded = {
        **config.to_dict(),
        "template": template.describe(model.tokenizer),
        "likelihood": "per-token mean log-prob, raw sentences, vector added at every position",
        "ab_and_refusal": "chat template, vector added from the instruction end on",
        "refusal_openers": refusal_openers(),
        "compliance_openers": compliance_openers(),
    }
    data = {name: study["data"]["test_fingerprint"] for name, study in {**bias, "refusal": refusal}.items()}
    provenance = collect_provenance(model_record=model_record(model).to_dict(), data=data, seed=config.seed)
    result = Result(
        name="steering",
        values={"bias": bias, "refusal": refusal, "generations": generations},
        config=recorded,
        provenance=provenance,
    )
    path = result.save(config.out / "steering")
    print("wrote", path)
    for name, vector in vectors.items():
        vector.save(config.out / "vectors" / name)
        # the strongest setting at the chosen layer, at every position (side-effect readouts score raw text),
        # ready for: python -m experiments.side_effects --intervention FILE
        strongest = max(config.refusal_multipliers if name == "refusal" else config.multipliers)
        save_intervention(
            AddVector(vector, strongest, [layers[name]], start=None),
            config.out / "interventions" / name,
            provenance=vector.provenance,
        )
    return path


def report(result: Result, path: Path, config: Config) -> None:
    """Print the summary and draw the figures of a saved result (a run and ``--replot`` alike)."""
    print(summarize(result))
    save_figures(draw(result), path.parent, png=config.png)


def main(argv: list[str] | None = None) -> Result:
    return cli.main(Config, argv, description=__doc__, quick=QUICK, result_name="steering", run=run, report=report)


if __name__ == "__main__":
    cli.run(main)
