"""Cosine-similarity maps between bias-type steering vectors, within one model or across two checkpoints.

Within a model (``--model``): per layer, the bias x bias cosine matrix of the StereoSet bias-type vectors
(and the gender prompt-set vector), each vector's split-half reliability, a shuffled-label null, the mean
off-diagonal similarity with a bootstrap interval, and a layer x layer map per vector.
Across checkpoints (``--base`` and ``--chat``, same architecture, processed identically): per layer the
similarity of each bias vector with itself across the two, and the mean off-diagonal similarity in each
with intervals and their difference: "RLHF makes different biases' representations more similar"
becomes a number with an interval.

Layers: ``--layers``, or every ``--layer-step``-th layer from 0 (default every layer; ``--quick``: every third).

    python -m experiments.similarity [--model NAME] [--layers 0 6 12] [--quick]
    python -m experiments.similarity --base llama-2-7b --chat llama-2-7b-chat
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import torch
from plotly.subplots import make_subplots
from transformer_lens import HookedTransformer

from experiments import cli
from lens_bias.data.contrast_splits import CONTRASTS, contrast_split
from lens_bias.data.stereoset import BIAS_TYPES as STEREOSET_BIAS_TYPES
from lens_bias.directions import SteeringVector
from lens_bias.errors import InputError
from lens_bias.figures.primitives import heatmap, lines_with_ci, save_figures
from lens_bias.models import EMBEDDED_MODEL, check_layers, load_model, model_record
from lens_bias.provenance import Result, collect_provenance, set_seed
from lens_bias.similarity import (
    bias_by_bias,
    compare_checkpoints,
    layer_by_layer,
    off_diagonal_mean,
    shuffled_null,
    split_half,
)
from lens_bias.stats import Estimate
from lens_bias.steering.build import Method
from lens_bias.steering.contrast import ContrastActivations, SentenceReadout
from lens_bias.steering.fit import fit_vector

#: The contrasts whose pairs are raw text (read without a chat template): the ones a similarity map compares.
RAW_TEXT_CONTRASTS = tuple(name for name in CONTRASTS if name != "refusal")
DTYPES = ("float32", "fp32", "float16", "fp16", "bfloat16", "bf16")


@dataclass(frozen=True)
class Config(cli.RunConfig):
    """The contrasts, layers and vector recipe of one similarity study, and the checkpoints it compares."""

    model: str = field(default=EMBEDDED_MODEL, metadata={"help": "model for the within-model maps"})
    base: str | None = field(default=None, metadata={"help": "first checkpoint (e.g. llama-2-7b) for a comparison"})
    chat: str | None = field(default=None, metadata={"help": "second checkpoint (e.g. llama-2-7b-chat)"})
    contrasts: tuple[str, ...] = field(
        default=(*STEREOSET_BIAS_TYPES, "gender-prompts"),
        metadata={"help": "named contrasts to compare", "choices": RAW_TEXT_CONTRASTS},
    )
    layers: tuple[int, ...] | None = field(
        default=None, metadata={"help": "layers (omit for every --layer-step-th layer)"}
    )
    layer_step: int = field(
        default=1, metadata={"help": "without --layers: every k-th layer from 0 (--quick: 3)", "min": 1}
    )
    n_pairs: int | None = field(default=100, metadata={"help": "training pairs per contrast", "min": 1})
    readout: str = field(
        default="mean_from_difference",
        metadata={"choices": ["last", "mean_from_difference"], "help": "how a sentence's activation is read"},
    )
    method: str = field(
        default="mean_difference",
        metadata={"choices": ["mean_difference", "first_pc"], "help": "how the vector is built from the pairs"},
    )
    batch_size: int = field(default=16, metadata={"help": "rows per forward pass", "min": 1})
    dtype: str | None = field(
        default=None, metadata={"help": "model dtype (default: float16 on CUDA, else float32)", "choices": DTYPES}
    )
    out: Path = field(default=Path("figures/similarity"), metadata={"help": "output folder (results, figures)"})

    def __post_init__(self) -> None:
        if (self.base is None) != (self.chat is None):
            raise InputError("Give both --base and --chat for a cross-checkpoint comparison (or neither).")
        if not self.contrasts:
            raise InputError("--contrasts needs at least one contrast.")
        unknown = [name for name in self.contrasts if name not in RAW_TEXT_CONTRASTS]
        if unknown:
            raise InputError(f"Unknown contrasts {unknown}: use {', '.join(RAW_TEXT_CONTRASTS)}.")
        if self.layers is not None and not self.layers:
            raise InputError("--layers needs at least one layer (omit it for every layer).")
        if self.dtype is not None and self.dtype not in DTYPES:
            raise InputError(f"Unknown --dtype {self.dtype!r}: use float32, float16 or bfloat16.")
        super().__post_init__()

    @property
    def checkpoints(self) -> list[str]:
        """The models to load: base and chat for a comparison, else the one model."""
        return [self.base, self.chat] if self.base is not None and self.chat is not None else [self.model]


QUICK = {"n_pairs": 24, "layer_step": 3}

Built = tuple[dict[str, SteeringVector], dict[str, ContrastActivations], dict[str, dict]]


def vectors_for(model: HookedTransformer, config: Config, layers: list[int]) -> Built:
    """Vectors and paired activations per contrast, built identically for every checkpoint."""
    vectors, activations, data = {}, {}, {}
    for name in config.contrasts:
        split = contrast_split(name, n_train=config.n_pairs, seed=config.seed)
        fitted = fit_vector(
            model,
            split,
            layers,
            readout=cast(SentenceReadout, config.readout),
            method=cast(Method, config.method),
            batch_size=config.batch_size,
            seed=config.seed,
            held_out=False,
            progress=name,
        )
        vectors[name], activations[name], data[name] = fitted.vector, fitted.train, split.describe()
    return vectors, activations, data


def within_model(vectors, activations, seed):
    names = list(vectors)
    null = torch.stack(
        [shuffled_null(activations[a], activations[b], seed=seed) for i, a in enumerate(names) for b in names[i + 1 :]]
    )  # [pairs, draws, layers]
    return {
        "contrasts": names,
        "layers": list(next(iter(vectors.values())).layers),
        "bias_by_bias": bias_by_bias(vectors).tolist(),
        "split_half": {name: split_half(activations[name], seed=seed).tolist() for name in names},
        "null_abs_q95": null.abs().flatten(0, 1).quantile(0.95, dim=0).tolist(),
        "off_diagonal": [e.to_dict() for e in off_diagonal_mean(activations, seed=seed)],
        "layer_by_layer": {name: layer_by_layer(vectors[name]).tolist() for name in names},
    }


def _shown(layers: list[int]) -> list[int]:
    """The first, last and two evenly spaced layers in between (the layers figures and summaries show)."""
    return sorted({layers[0], layers[len(layers) // 3], layers[2 * len(layers) // 3], layers[-1]})


def draw(result: Result) -> dict[str, object]:
    """Figures from a saved similarity result: name -> plotly figure."""
    values, model = result.values, result.provenance["model"]["name"]
    figures = {}
    within = values.get("within")
    if within:
        layers, names = within["layers"], within["contrasts"]
        shown = _shown(layers)
        grid = make_subplots(rows=1, cols=len(shown), subplot_titles=[f"layer {l}" for l in shown])
        for col, layer in enumerate(shown, start=1):
            sub = heatmap(
                within["bias_by_bias"][layers.index(layer)],
                names,
                names,
                title="t",
                x_title="bias type",
                y_title="bias type",
                zmid=0,
                text_fmt=".2f",
            )
            for trace in sub.data:
                trace.update(zmin=-1, zmax=1, showscale=col == len(shown))
                grid.add_trace(trace, row=1, col=col)
            grid.update_yaxes(showticklabels=col == 1, row=1, col=col)
        grid.update_layout(title=f"Cosine similarity between bias vectors ({model})", width=320 * len(shown) + 100)
        figures["bias_by_bias"] = grid
        series = {"mean off-diagonal cosine": [Estimate.from_dict(e) for e in within["off_diagonal"]]}
        series.update({f"split-half {n}": [Estimate(v, v, v, 0) for v in within["split_half"][n]] for n in names})
        series["shuffled-label null |cos| (95th pct)"] = [Estimate(v, v, v, 0) for v in within["null_abs_q95"]]
        figures["baselines"] = lines_with_ci(
            layers,
            series,
            title=f"Bias-vector similarity and its baselines ({model})",
            x_title="layer",
            y_title="cosine similarity",
        )
        for name in names:
            figures[f"layers_{name}"] = heatmap(
                within["layer_by_layer"][name],
                layers,
                layers,
                title=f"{name}: cosine between layers ({model})",
                x_title="layer",
                y_title="layer",
                zmid=0,
            )
    cross = values.get("cross")
    if cross:
        series = {
            "base: mean off-diagonal": [Estimate.from_dict(e) for e in cross["off_diagonal_a"]],
            "chat: mean off-diagonal": [Estimate.from_dict(e) for e in cross["off_diagonal_b"]],
            "chat - base": [Estimate.from_dict(e) for e in cross["difference"]],
        }
        figures["cross_off_diagonal"] = lines_with_ci(
            cross["layers"],
            series,
            title="Bias-bias similarity: base vs chat",
            x_title="layer",
            y_title="cosine similarity",
        )
        figures["cross_self"] = lines_with_ci(
            cross["layers"],
            {b: [Estimate(v, v, v, 0) for v in vs] for b, vs in cross["self_similarity"].items()},
            title="Same bias vector across checkpoints",
            x_title="layer",
            y_title="cosine(base, chat)",
        )
    return figures


def summarize(result: Result) -> str:
    """Headline numbers at four layers: bias x bias cosines next to their baselines; the cross-checkpoint
    comparison when there is one."""
    values, lines = result.values, []
    within = values.get("within")
    if within:
        layers, names = within["layers"], within["contrasts"]
        for layer in _shown(layers):
            i = layers.index(layer)
            matrix = within["bias_by_bias"][i]
            pairs = ", ".join(
                f"{a}/{b} {matrix[x][y]:.2f}" for x, a in enumerate(names) for y, b in enumerate(names) if x < y
            )
            halves = ", ".join(f"{n} {within['split_half'][n][i]:.2f}" for n in names)
            lines.append(
                f"layer {layer}: mean off-diagonal cosine {Estimate.from_dict(within['off_diagonal'][i])}; "
                f"shuffled-label null |cos| q95 {within['null_abs_q95'][i]:.2f}"
            )
            lines.append(f"    pairs: {pairs}")
            lines.append(f"    split-half reliability: {halves}")
    cross = values.get("cross")
    if cross:
        for layer in _shown(cross["layers"]):
            i = cross["layers"].index(layer)
            self_sim = ", ".join(f"{b} {vs[i]:.2f}" for b, vs in cross["self_similarity"].items())
            lines.append(
                f"layer {layer}: off-diagonal base {Estimate.from_dict(cross['off_diagonal_a'][i])}, chat "
                f"{Estimate.from_dict(cross['off_diagonal_b'][i])}, chat - base "
                f"{Estimate.from_dict(cross['difference'][i])}; same vector across checkpoints: {self_sim}"
            )
    return "\n".join(lines)


def run(config: Config) -> Path:
    """Build the vectors of every checkpoint, compare them; save the result and the vectors, return the
    result's JSON path."""
    set_seed(config.seed)
    names = config.checkpoints
    models, built = {}, {}
    for name in names:
        model = load_model(name, device=config.device, dtype=config.dtype)
        layers = (
            check_layers(model, config.layers)
            if config.layers is not None
            else list(range(0, model.cfg.n_layers, config.layer_step))
        )
        built[name] = vectors_for(model, config, layers)
        models[name] = model_record(model).to_dict()
        del model
    values = {"within": within_model(*built[names[-1]][:2], config.seed)}
    if config.base is not None and config.chat is not None:
        comparison = compare_checkpoints(
            built[config.base][0], built[config.chat][0], built[config.base][1], built[config.chat][1], seed=config.seed
        )
        values["cross"] = {
            "layers": list(comparison.layers),
            "self_similarity": comparison.self_similarity,
            "off_diagonal_a": [e.to_dict() for e in comparison.off_diagonal_a],
            "off_diagonal_b": [e.to_dict() for e in comparison.off_diagonal_b],
            "difference": [e.to_dict() for e in comparison.difference],
        }
    vectors, _, data = built[names[-1]]
    result = Result(
        name="similarity",
        values=values,
        config=config.to_dict(),
        provenance=collect_provenance(
            model_record=models[names[-1]], seed=config.seed, data={k: v["train_fingerprint"] for k, v in data.items()}
        )
        | {"models": models, "contrasts": data},
    )
    path = result.save(config.out / "similarity")
    for name, vector in vectors.items():
        vector.save(config.out / "vectors" / name)
    return path


def report(result: Result, path: Path, config: Config) -> None:
    """Print the headline numbers and draw every figure next to the saved result."""
    print(summarize(result))
    print("wrote", path)
    save_figures(draw(result), path.parent, png=config.png)


def main(argv: list[str] | None = None) -> Result:
    return cli.main(Config, argv, description=__doc__, quick=QUICK, result_name="similarity", run=run, report=report)


if __name__ == "__main__":
    cli.run(main)
