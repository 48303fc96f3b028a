"""The patching study of selected pairs: every target patched exactly and by attribution, their agreement,
and the clean / corrupted metric, as JSON-ready values and per-pair score tensors (:func:`patch_targets`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor
from transformer_lens import HookedTransformer

from lens_bias.cells import CellStore
from lens_bias.data.gender_swap import PatchingPair
from lens_bias.data.records import ContrastPair
from lens_bias.patching.attribution import agreement, attribution_patch
from lens_bias.patching.exact import patch
from lens_bias.patching.inputs import MinimalPairInputs, PatchingInputs
from lens_bias.patching.result import Direction, PatchResult

#: What the metric of each pair set is (the result records it).
METRIC_NAMES = {
    "gender_swap": "logit(stereotyped pronoun of the clean term) - logit(other pronoun), nats",
    "crows_pairs": "summed log P of the sentence after the swapped term, nats",
}


def x_labels(result: PatchResult) -> tuple[list[str], str]:
    """Column labels and axis title of a result's heatmap: positions (token labels), heads, or one column
    per (position, head), position-major."""
    axes = result.axes[2:]
    if axes == ("pos",):
        return result.position_labels(), "position (token)"
    if axes == ("head",):
        return result.head_labels(), "head"
    return (
        [f"{position} {head}" for position in result.position_labels() for head in result.head_labels()],
        "position (token), head",
    )


def patching_items(
    inputs: PatchingInputs | MinimalPairInputs, values: dict[str, Any], tensors: dict[str, Tensor]
) -> list[dict[str, Any]]:
    """The per-item rows of :func:`patch_targets`' output: one per pair x target (the ``condition``) x layer x
    heatmap column (``column``: a position's token label, a head, or both), with the pair's ``exact`` and
    ``attribution`` scores there and its ``clean_metric`` / ``corrupted_metric`` (nats); ``group``: the
    pair's target term (contrast pairs) or template group (term-swap pairs)."""
    rows = []
    pairs: Sequence[PatchingPair | ContrastPair] = inputs.pairs
    clean, corrupted = tensors["clean_metric"].tolist(), tensors["corrupted_metric"].tolist()
    for target, entry in values["targets"].items():
        exact = tensors[f"{target}.exact"].flatten(2).tolist()
        approx = tensors[f"{target}.attribution"].flatten(2).tolist()
        for p, pair in enumerate(pairs):
            named = {
                "item_id": pair.id,
                "text": f"{inputs.clean.texts[p]} | {inputs.corrupted.texts[p]}",
                "group": pair.target if isinstance(pair, ContrastPair) else pair.group,
                "condition": target,
                "clean_metric": clean[p],
                "corrupted_metric": corrupted[p],
            }
            for i, layer in enumerate(entry["layers"]):
                for j, column in enumerate(entry["x_labels"]):
                    rows.append(
                        named
                        | {"layer": layer, "column": column, "exact": exact[p][i][j], "attribution": approx[p][i][j]}
                    )
    return rows


def patch_targets(
    model: HookedTransformer,
    inputs: PatchingInputs | MinimalPairInputs,
    targets: Sequence[str],
    *,
    direction: Direction,
    metric_name: str,
    batch_size: int = 64,
    cells: CellStore | None = None,
) -> tuple[dict[str, Any], dict[str, Tensor], dict[str, Any]]:
    """Exact patching (:func:`patch`, each target's blocks of layers cells of ``cells``) and attribution
    patching (:func:`attribution_patch`) of every target, and their agreement (:func:`agreement`, k=10).

    Returns ``values`` (per target: agreement, axes, layers, heatmap labels, pairs, pair-mean scores of
    both; ``metric``: ``metric_name``, clean and corrupted means (nats), the share of pairs with clean >
    corrupted, degenerate pairs), ``tensors`` (``{target}.exact`` / ``{target}.attribution``: per-pair
    scores, ``[n_pairs, n_layers, ...]``; ``clean_metric`` / ``corrupted_metric``: ``[n_pairs]``, nats) and
    what the result's config records besides the flags (pair ids, position labels, texts, definitions)."""
    metric = inputs.metric()
    exacts = {
        target: patch(
            model,
            inputs.clean,
            inputs.corrupted,
            metric,
            target=target,
            direction=direction,
            batch_size=batch_size,
            cells=cells,
            progress=f"{target}: exact",
        )
        for target in targets
    }
    values: dict[str, Any] = {"targets": {}}
    tensors: dict[str, Tensor] = {}
    for target, exact in exacts.items():
        approx = attribution_patch(model, inputs.clean, inputs.corrupted, metric, target=target, direction=direction)
        labels, x_title = x_labels(exact)
        values["targets"][target] = {
            "agreement": agreement(exact, approx, k=10),
            "axes": list(exact.axes),
            "layers": exact.layers,
            "x_labels": labels,
            "x_title": x_title,
            "n_pairs": int((~exact.degenerate).sum()),
            "exact_config": exact.config,
            "mean_exact": exact.mean(),
            "mean_attribution": approx.mean(),
        }
        tensors[f"{target}.exact"], tensors[f"{target}.attribution"] = exact.scores, approx.scores
    gap = exact.clean_metric - exact.corrupted_metric
    values["metric"] = {
        "name": metric_name,
        "clean_mean": exact.clean_metric.mean(),
        "corrupted_mean": exact.corrupted_metric.mean(),
        "share_clean_above_corrupted": (gap > 0).float().mean(),
        "n_degenerate": int(exact.degenerate.sum()),
    }
    tensors["clean_metric"], tensors["corrupted_metric"] = exact.clean_metric, exact.corrupted_metric
    record = {
        "pair_ids": [pair.id for pair in inputs.pairs],
        "position_labels": exact.position_labels(),
        "clean_texts": inputs.clean.texts,
        "corrupted_texts": inputs.corrupted.texts,
        "normalisation": "(patched - corrupted) / (clean - corrupted), both directions",
        "agreement": "lens_bias.patching.agreement on pair-mean effects, k=10",
    }
    return values, tensors, record
