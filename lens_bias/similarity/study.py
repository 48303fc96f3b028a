"""The similarity study: the same bias vectors built in every checkpoint (:func:`checkpoint_vectors`), and
within one model the maps next to their baselines as JSON-ready values (:func:`within_model`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lens_bias.data.contrast_splits import contrast_split, own_splits
from lens_bias.data.records import ContrastPair
from lens_bias.directions import SteeringVector
from lens_bias.models import check_layers, load_model, model_record
from lens_bias.similarity.cosines import (
    bias_by_bias,
    layer_by_layer,
    null_abs_quantile,
    off_diagonal_mean,
    split_half,
)
from lens_bias.steering.build import Method
from lens_bias.steering.contrast import ContrastActivations, SentenceReadout
from lens_bias.steering.fit import fit_vector


@dataclass
class BuiltVectors:
    """One checkpoint's bias vectors and their training pairs' activations by bias type, what data each
    was built from (:meth:`ContrastSplit.describe`), the checkpoint's model record and the training pairs."""

    vectors: dict[str, SteeringVector]
    activations: dict[str, ContrastActivations]
    data: dict[str, dict[str, Any]]
    model_record: dict[str, Any]
    pairs: dict[str, list[ContrastPair]]

    def items(self, condition: str) -> list[dict[str, Any]]:
        """One row per training pair x layer (``condition``: e.g. the checkpoint's name): ``projection``, the
        pair's activation difference (positive - negative) along its contrast's unit direction, and
        ``cosine``, the cosine of the two (residual-stream units; > 0: the pair agrees with its vector)."""
        rows = []
        for name, vector in self.vectors.items():
            acts = self.activations[name]
            diff = (acts.positive - acts.negative).float()
            units = vector.directions.float() / vector.directions.float().norm(dim=-1, keepdim=True)
            projection = (diff * units).sum(-1)
            cosine = projection / diff.norm(dim=-1).clamp_min(1e-12)
            for p, pair in enumerate(self.pairs[name]):
                text = f"{pair.prompt}{pair.positive} | {pair.prompt}{pair.negative}"
                named = {"item_id": pair.id, "text": text, "group": pair.target, "condition": condition}
                rows += [
                    named
                    | {
                        "contrast": name,
                        "layer": layer,
                        "projection": float(projection[p, i]),
                        "cosine": float(cosine[p, i]),
                    }
                    for i, layer in enumerate(acts.layers)
                ]
        return rows


def checkpoint_vectors(
    checkpoints: Sequence[str],
    bias_types: Sequence[str],
    *,
    layers: Sequence[int] | None = None,
    layer_step: int = 1,
    n_pairs: int | None = 100,
    readout: SentenceReadout = "mean_from_difference",
    method: Method = "mean_difference",
    device: str | None = None,
    dtype: str | None = None,
    batch_size: int = 16,
    seed: int = 0,
    pairs_file: Any = None,
    columns: Sequence[str] = (),
) -> dict[str, BuiltVectors]:
    """For each checkpoint in turn (one loaded at a time), the vectors of every named contrast of
    ``bias_types`` (:func:`lens_bias.steering.fit.fit_vector` on ``n_pairs`` training pairs, no held-out
    pairs) at ``layers`` (None: every ``layer_step``-th layer from 0; checked before any forward); with
    ``pairs_file`` (a table of your own pairs, ``columns`` its mapping), one contrast per bias type of the
    table instead (:func:`lens_bias.data.own_splits`)."""
    if pairs_file is not None:
        splits = own_splits(pairs_file, columns, n_train=n_pairs, seed=seed)
    else:
        splits = {bias: contrast_split(bias, n_train=n_pairs, seed=seed) for bias in bias_types}
    built = {}
    for name in checkpoints:
        model = load_model(name, device=device, dtype=dtype)
        chosen = check_layers(model, layers) if layers is not None else list(range(0, model.cfg.n_layers, layer_step))
        vectors, activations, data = {}, {}, {}
        for bias, split in splits.items():
            fitted = fit_vector(
                model,
                split,
                chosen,
                readout=readout,
                method=method,
                batch_size=batch_size,
                seed=seed,
                held_out=False,
                progress=bias,
            )
            vectors[bias], activations[bias], data[bias] = fitted.vector, fitted.train, split.describe()
        pairs = {bias: split.train for bias, split in splits.items()}
        built[name] = BuiltVectors(vectors, activations, data, model_record(model).to_dict(), pairs)
        del model
    return built


def within_model(
    vectors: Mapping[str, SteeringVector], activations: Mapping[str, ContrastActivations], *, seed: int = 0
) -> dict[str, Any]:
    """JSON-ready maps of one model: bias x bias cosines per layer (``[n_layers][k][k]``), each type's
    split-half reliability and layer x layer map, the shuffled-label null's 95th percentile of ``|cos|``
    and the mean off-diagonal cosine with bootstrap intervals, per layer."""
    names = list(vectors)
    return {
        "contrasts": names,
        "layers": list(next(iter(vectors.values())).layers),
        "bias_by_bias": bias_by_bias(vectors).tolist(),
        "split_half": {name: split_half(activations[name], seed=seed).tolist() for name in names},
        "null_abs_q95": null_abs_quantile(activations, q=0.95, seed=seed).tolist(),
        "off_diagonal": [e.to_dict() for e in off_diagonal_mean(activations, seed=seed)],
        "layer_by_layer": {name: layer_by_layer(vectors[name]).tolist() for name in names},
    }
