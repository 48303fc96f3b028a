"""Residual-stream steering vectors: one type, built by contrast, applied as interventions.

A :class:`SteeringVector` holds one direction per layer (``[n_layers, d_model]``, residual-stream units)
with the provenance of how it was made (model record, hook, positions, template, method, dataset and its
fingerprint, seed) and the mean residual norm at each layer, so multipliers can be read relative to the
stream they are added to (norms grow ~20x from the first to the last layer of the embedded model).

Build: :func:`contrast_activations` reads paired activations (A/B answer letter, sentence pairs at
the last token or averaged from the first differing token, or chat completions such as refusal vs
compliance); :func:`build_vector` turns them into a vector by ``mean_difference`` or ``first_pc`` (first
principal component of the centred paired differences, sign fixed so the positive side projects
positive), and :func:`svd_subspace` keeps the components explaining a share of variance, for the
self-alignment edit rules (:class:`SubspaceEdit`).

Apply: :class:`AddVector` adds ``multiplier x vector`` at chosen layers at every position from a named
position on (``instruction_end`` for chat prompts: the last instruction token and every answer token,
including each token generated with the KV cache) or at all positions; :class:`ProjectOut` removes the
direction. All are :class:`lens_bias.interventions.Intervention`s, so every readout runs under them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import torch
from jaxtyping import Float
from safetensors.torch import load_file, save_file
from torch import Tensor
from transformer_lens import HookedTransformer

from lens_bias.activations import ResidHook, extract, residual_hook_name
from lens_bias.data.records import ABItem, ContrastPair, fingerprint
from lens_bias.interventions import ForwardContext, HookFn
from lens_bias.models import check_layers, model_record
from lens_bias.prompts import ChatTemplate, PromptBatch, ab_batch, chat_batch, continuation_batch
from lens_bias.provenance import Result

Method = Literal["mean_difference", "first_pc"]
SentenceReadout = Literal["last", "mean_from_difference"]


@dataclass
class SteeringVector:
    """One steering direction per layer.

    ``directions``: ``[n_layers, d_model]`` in residual-stream units, row ``i`` for ``layers[i]``.
    ``residual_norms``: ``[n_layers]`` mean L2 norm of the residual stream the directions were read from
    (both sides of the contrast), for relative multipliers.
    ``provenance``: how the vector was made (see :func:`build_vector`); equality of everything but the
    model is what cross-checkpoint comparisons require.
    """

    name: str
    layers: tuple[int, ...]
    directions: Float[Tensor, "n_layers d_model"]
    residual_norms: Float[Tensor, "n_layers"]
    hook: ResidHook = "resid_post"
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.layers = tuple(int(layer) for layer in self.layers)
        if self.directions.ndim != 2 or self.directions.shape[0] != len(self.layers):
            raise ValueError(f"directions must be [n_layers={len(self.layers)}, d_model], got "
                             f"{tuple(self.directions.shape)}.")
        if self.residual_norms.shape != (len(self.layers),):
            raise ValueError(f"residual_norms must be [{len(self.layers)}], got {tuple(self.residual_norms.shape)}.")

    def at(self, layer: int) -> Float[Tensor, "d_model"]:
        """The direction at ``layer``."""
        if layer not in self.layers:
            raise ValueError(f"Vector {self.name!r} has no direction at layer {layer}; it has {list(self.layers)}.")
        return self.directions[self.layers.index(layer)]

    def norms(self) -> Float[Tensor, "n_layers"]:
        """L2 norm of the direction at each layer."""
        return self.directions.norm(dim=-1)

    def relative_multiplier(self, multiplier: float, layer: int) -> float:
        """``multiplier x |v_layer| / mean |residual_layer|``: the size of the addition as a share of the
        residual stream's typical norm at that layer."""
        i = self.layers.index(layer)
        return float(multiplier * self.directions[i].norm() / self.residual_norms[i])

    def _derived(self, name: str, directions: Tensor, operation: str) -> "SteeringVector":
        provenance = {**self.provenance, "operations": [*self.provenance.get("operations", []), operation]}
        return SteeringVector(name, self.layers, directions, self.residual_norms.clone(), self.hook, provenance)

    def __mul__(self, scale: float) -> "SteeringVector":
        return self._derived(f"{scale}*{self.name}", self.directions * scale, f"scale {scale}")

    __rmul__ = __mul__

    def __neg__(self) -> "SteeringVector":
        return self * -1.0

    def __add__(self, other: "SteeringVector") -> "SteeringVector":
        self._check_compatible(other)
        return self._derived(f"{self.name}+{other.name}", self.directions + other.directions, f"add {other.name}")

    def __sub__(self, other: "SteeringVector") -> "SteeringVector":
        return self + (-other)

    def normalized(self, norms: float | Tensor = 1.0) -> "SteeringVector":
        """The directions rescaled to ``norms`` (a number, or ``[n_layers]`` per layer)."""
        target = torch.as_tensor(norms, dtype=self.directions.dtype)
        target = target.expand(len(self.layers)) if target.ndim == 0 else target
        scaled = self.directions / self.norms()[:, None].clamp_min(1e-12) * target[:, None]
        return self._derived(self.name, scaled, "normalize")

    def _check_compatible(self, other: "SteeringVector") -> None:
        if self.layers != other.layers or self.hook != other.hook or self.directions.shape != other.directions.shape:
            raise ValueError(f"Vectors {self.name!r} and {other.name!r} differ in layers/hook/shape: "
                             f"{self.layers}/{self.hook} vs {other.layers}/{other.hook}.")

    def save(self, path_stem: str | Path) -> Path:
        """Write ``{stem}.safetensors`` (directions, norms) and ``{stem}.json`` (everything else)."""
        stem = Path(path_stem).with_suffix("")
        stem.parent.mkdir(parents=True, exist_ok=True)
        save_file({"directions": self.directions.contiguous().cpu(),
                   "residual_norms": self.residual_norms.contiguous().cpu()}, str(stem) + ".safetensors")
        meta = {"name": self.name, "layers": list(self.layers), "hook": self.hook, "provenance": self.provenance}
        path = Path(str(stem) + ".json")
        path.write_text(json.dumps(meta, indent=2, default=str))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "SteeringVector":
        stem = Path(path).with_suffix("")
        meta = json.loads(Path(str(stem) + ".json").read_text())
        tensors = load_file(str(stem) + ".safetensors")
        return cls(meta["name"], tuple(meta["layers"]), tensors["directions"], tensors["residual_norms"],
                   meta["hook"], meta["provenance"])


def mean_norm_across(vectors: Sequence[SteeringVector]) -> Float[Tensor, "n_layers"]:
    """Per-layer mean of the vectors' norms: contrastive activation addition rescales every behaviour's
    vector to this, so behaviours are compared at equal strength (``v.normalized(mean_norm_across(vs))``)."""
    for other in vectors[1:]:
        vectors[0]._check_compatible(other)
    return torch.stack([v.norms() for v in vectors]).mean(0)


# --- contrast activations ----------------------------------------------------------------------------


@dataclass
class ContrastActivations:
    """Paired activations: ``positive``/``negative`` are ``[n_pairs, n_layers, d_model]``; ``source``
    describes where they were read (for provenance)."""

    positive: Float[Tensor, "n n_layers d_model"]
    negative: Float[Tensor, "n n_layers d_model"]
    layers: tuple[int, ...]
    hook: ResidHook
    source: dict[str, Any]


def _first_difference(a: PromptBatch, b: PromptBatch) -> Tensor:
    """Per row, the first token index where the two batches differ (or where the shorter one ends)."""
    firsts = []
    for i in range(len(a)):
        x, y = a.tokens[i, : a.lengths[i]], b.tokens[i, : b.lengths[i]]
        n = min(len(x), len(y))
        differ = (x[:n] != y[:n]).nonzero()
        first = int(differ[0]) if len(differ) else n
        firsts.append(min(first, int(a.lengths[i]) - 1, int(b.lengths[i]) - 1))
    return torch.tensor(firsts)


def contrast_activations(
    model: HookedTransformer,
    items: Sequence[ContrastPair] | Sequence[ABItem],
    layers: Sequence[int],
    *,
    template: ChatTemplate | None = None,
    readout: SentenceReadout = "last",
    hook: ResidHook = "resid_post",
    batch_size: int = 16,
    progress: bool | str = False,
) -> ContrastActivations:
    """Read paired residual activations for a contrast.

    * :class:`ABItem` s (requires ``template``): the prompt followed by ``(`` + the positive letter vs
      the negative letter, read at the answer-letter token (contrastive activation addition).
    * :class:`ContrastPair` s without ``template``: ``prompt + positive`` vs ``prompt + negative`` as raw
      text, read at the last token (``readout="last"``) or averaged over the tokens from the first token
      where the two sides differ to the end (``"mean_from_difference"``).
    * :class:`ContrastPair` s with ``template``: the prompt as the user message and each side as the
      start of the model's answer (e.g. refusal vs compliance), read as above.
    Padding is never read (positions come from the batch).
    """
    layers = check_layers(model, layers)
    if not items:
        raise ValueError("No items to build a contrast from.")
    tokenizer = model.tokenizer
    if isinstance(items[0], ABItem):
        if template is None:
            raise ValueError("A/B items need a chat template (lens_bias.prompts.template_for(model)).")
        letters = [item.positive_letter for item in items]
        other = ["B" if letter == "A" else "A" for letter in letters]
        pos_batch, neg_batch = ab_batch(tokenizer, template, items, letters), ab_batch(tokenizer, template, items, other)
        position, mean_from = "answer", None
        source = {"kind": "ab", "position": "answer letter", "template": template.describe(tokenizer)}
    else:
        if template is None:
            pos_batch = continuation_batch(tokenizer, [p.prompt for p in items], [p.positive for p in items])
            neg_batch = continuation_batch(tokenizer, [p.prompt for p in items], [p.negative for p in items])
        else:
            users = [p.prompt for p in items]
            pos_batch = chat_batch(tokenizer, template, users, [p.positive for p in items])
            neg_batch = chat_batch(tokenizer, template, users, [p.negative for p in items])
        position, mean_from = "last", None
        if readout == "mean_from_difference":
            first = _first_difference(pos_batch, neg_batch)
            pos_batch.positions["first_difference"] = first
            neg_batch.positions["first_difference"] = first.clone()
            mean_from = "first_difference"
        elif readout != "last":
            raise ValueError(f"readout must be 'last' or 'mean_from_difference', got {readout!r}.")
        source = {"kind": "sentences" if template is None else "chat-completions", "position": readout,
                  "template": template.describe(tokenizer) if template else None}
    kwargs = dict(position=position, mean_from=mean_from, hook=hook, batch_size=batch_size)
    positive = extract(model, pos_batch, layers, progress=progress and f"{progress} (+)", **kwargs)
    negative = extract(model, neg_batch, layers, progress=progress and f"{progress} (-)", **kwargs)
    return ContrastActivations(positive, negative, tuple(layers), hook, source)


# --- building vectors --------------------------------------------------------------------------------


def _first_pc(differences: Float[Tensor, "n d"], mean_difference: Float[Tensor, "d"]) -> Float[Tensor, "d"]:
    """Unit first principal component of the centred differences, oriented so that the mean
    difference (positive minus negative) projects positive."""
    centred = differences - differences.mean(0, keepdim=True)
    _, _, vh = torch.linalg.svd(centred.double(), full_matrices=False)
    component = vh[0].to(differences.dtype)
    return component if float(component @ mean_difference) >= 0 else -component


def build_vector(
    name: str,
    activations: ContrastActivations,
    *,
    method: Method = "mean_difference",
    model: HookedTransformer | None = None,
    dataset: str = "",
    items: Sequence[Any] | None = None,
    seed: int | None = None,
) -> SteeringVector:
    """A :class:`SteeringVector` from paired activations.

    ``mean_difference``: mean over pairs of (positive - negative), per layer (residual units).
    ``first_pc``: first principal component of the mean-centred paired differences, scaled to the norm
    of the mean difference so multipliers compare across methods; sign fixed so the positive side
    projects positive.
    ``model``/``dataset``/``items``/``seed`` fill the provenance (model record, data fingerprint).
    """
    differences = (activations.positive - activations.negative).float()
    mean_difference = differences.mean(0)  # [n_layers, d_model]
    if method == "mean_difference":
        directions = mean_difference
    elif method == "first_pc":
        directions = torch.stack([
            _first_pc(differences[:, i], mean_difference[i]) * mean_difference[i].norm()
            for i in range(len(activations.layers))
        ])
    else:
        raise ValueError(f"Unknown method {method!r}: use 'mean_difference' or 'first_pc'.")
    both = torch.cat([activations.positive, activations.negative]).float()
    provenance = {
        "method": method,
        "hook": activations.hook,
        "layers": list(activations.layers),
        "source": activations.source,
        "n_pairs": int(differences.shape[0]),
        "dataset": dataset,
        "data_fingerprint": fingerprint(items) if items is not None else None,
        "seed": seed,
        "model": model_record(model).to_dict() if model is not None else None,
    }
    return SteeringVector(name, activations.layers, directions, both.norm(dim=-1).mean(0),
                          activations.hook, provenance)


@dataclass
class Subspace:
    """Per-layer orthonormal bases ``{layer: [k_layer, d_model]}`` of the paired differences, keeping
    the top right-singular vectors that explain ``variance`` of their total variance (self-alignment by
    representation editing). Signs are fixed so the mean difference projects positive on each."""

    bases: dict[int, Float[Tensor, "k d_model"]]
    hook: ResidHook
    variance: float
    provenance: dict[str, Any] = field(default_factory=dict)


def svd_subspace(
    activations: ContrastActivations,
    *,
    variance: float = 0.9,
    max_pair_cosine: float | None = None,
) -> Subspace:
    """The SVD subspace of (positive - negative) per layer, keeping components up to ``variance``.

    ``max_pair_cosine``: drop pairs whose two sides have cosine above this (the self-alignment recipe
    uses 0.8 on sentence embeddings). Default off: residual-stream activations of paired prompts share
    most of their direction (cosines ~0.9+ at every layer), so the rule would drop nearly every pair.
    """
    if not 0.0 < variance <= 1.0:
        raise ValueError(f"variance must be in (0, 1], got {variance}.")
    bases = {}
    for i, layer in enumerate(activations.layers):
        pos, neg = activations.positive[:, i].float(), activations.negative[:, i].float()
        keep = torch.ones(len(pos), dtype=torch.bool)
        if max_pair_cosine is not None:
            keep = torch.nn.functional.cosine_similarity(pos, neg, dim=-1) <= max_pair_cosine
            if not keep.any():
                raise ValueError(f"Every pair at layer {layer} has cosine > {max_pair_cosine}; raise it or pass None.")
        differences = (pos - neg)[keep]
        _, singular, vh = torch.linalg.svd(differences.double(), full_matrices=False)
        explained = (singular**2).cumsum(0) / (singular**2).sum()
        k = int((explained < variance).sum()) + 1
        basis = vh[:k].float()
        signs = torch.sign(basis @ differences.mean(0))
        bases[layer] = basis * torch.where(signs == 0, 1.0, signs)[:, None]
    return Subspace(bases, activations.hook, variance, {"source": activations.source, "max_pair_cosine": max_pair_cosine})


# --- interventions -----------------------------------------------------------------------------------


def _position_mask(context: ForwardContext, seq_len: int, start: str | None, device) -> Tensor | None:
    """``[batch, pos, 1]`` mask of absolute positions at or after ``context.batch.positions[start]``
    (None = every position)."""
    if start is None:
        return None
    if start not in context.batch.positions:
        raise ValueError(f"Steering starts at {start!r}, but the batch has positions {sorted(context.batch.positions)}; "
                         "use start=None to steer every position.")
    absolute = torch.arange(seq_len, device=device) + context.offset
    first = context.batch.positions[start].to(device)
    return (absolute[None, :] >= first[:, None])[..., None]


ADD_VECTOR_RESULT = "add_vector"
"""The ``kind`` of a saved :class:`AddVector` (see :func:`lens_bias.side_effects.load_intervention`)."""


@dataclass
class AddVector:
    """Add ``multiplier x vector`` to the residual stream at ``layers`` (default: every layer of the
    vector), at every position from ``start`` on (``"instruction_end"``: the last token of the
    instruction and everything after it, generated tokens included; ``None``: every position)."""

    vector: SteeringVector
    multiplier: float
    layers: Sequence[int] | None = None
    start: str | None = "instruction_end"

    def hooks(self, model: HookedTransformer, context: ForwardContext) -> list[tuple[str, HookFn]]:
        layers = check_layers(model, list(self.layers) if self.layers is not None else list(self.vector.layers))
        hooks = []
        for layer in layers:
            delta = (self.multiplier * self.vector.at(layer)).to(model.cfg.device, model.cfg.dtype)

            def add(activation: Tensor, hook, delta=delta) -> Tensor:
                mask = _position_mask(context, activation.shape[1], self.start, activation.device)
                return activation + (delta if mask is None else mask * delta)

            hooks.append((residual_hook_name(layer, self.vector.hook), add))
        return hooks

    def describe(self) -> dict[str, Any]:
        layers = list(self.layers) if self.layers is not None else list(self.vector.layers)
        return {"kind": ADD_VECTOR_RESULT, "vector": self.vector.name, "multiplier": self.multiplier,
                "relative_multiplier": {layer: self.vector.relative_multiplier(self.multiplier, layer) for layer in layers},
                "layers": layers, "start": self.start, "hook": self.vector.hook}

    def save(self, path_stem: str | Path) -> Path:
        """Write the intervention as one file pair a later run can apply again (e.g.
        ``python -m experiments.side_effects --intervention {stem}.json``): ``{stem}.json`` holds the
        description and the vector's provenance, ``{stem}.safetensors`` its directions and norms."""
        vector = {"name": self.vector.name, "layers": list(self.vector.layers), "hook": self.vector.hook,
                  "provenance": self.vector.provenance}
        return Result(ADD_VECTOR_RESULT, values={}, config={"intervention": self.describe(), "vector": vector},
                      provenance=self.vector.provenance,
                      tensors={"directions": self.vector.directions, "residual_norms": self.vector.residual_norms}
                      ).save(path_stem)

    @classmethod
    def load(cls, path: str | Path) -> "AddVector":
        """Read an intervention written by :meth:`save`."""
        result = Result.load(path)
        description, meta = result.config["intervention"], result.config["vector"]
        if description.get("kind") != ADD_VECTOR_RESULT:
            raise ValueError(f"{path} is not a saved AddVector (kind {description.get('kind')!r}).")
        vector = SteeringVector(meta["name"], tuple(meta["layers"]), result.tensors["directions"],
                                result.tensors["residual_norms"], meta["hook"], meta["provenance"])
        return cls(vector, float(description["multiplier"]), list(description["layers"]), description["start"])


@dataclass
class ProjectOut:
    """Remove the vector's direction from the residual stream at ``layers``: ``x - (x . u) u`` with
    ``u`` the unit direction, at every position."""

    vector: SteeringVector
    layers: Sequence[int] | None = None

    def hooks(self, model: HookedTransformer, context: ForwardContext) -> list[tuple[str, HookFn]]:
        layers = check_layers(model, list(self.layers) if self.layers is not None else list(self.vector.layers))
        hooks = []
        for layer in layers:
            unit = self.vector.at(layer) / self.vector.at(layer).norm().clamp_min(1e-12)
            unit = unit.to(model.cfg.device, model.cfg.dtype)

            def project(activation: Tensor, hook, unit=unit) -> Tensor:
                return activation - (activation @ unit)[..., None] * unit

            hooks.append((residual_hook_name(layer, self.vector.hook), project))
        return hooks

    def describe(self) -> dict[str, Any]:
        return {"kind": "project_out", "vector": self.vector.name, "layers": list(self.layers or self.vector.layers)}


@dataclass
class SubspaceEdit:
    """The self-alignment edit with a :class:`Subspace`: ``boost``: ``x + sum_v tanh(v.x) v``;
    ``remove``: ``x - sum_v relu(v.x) v`` (v unit basis vectors), at ``layers`` and every position."""

    subspace: Subspace
    mode: Literal["boost", "remove"]
    layers: Sequence[int] | None = None

    def hooks(self, model: HookedTransformer, context: ForwardContext) -> list[tuple[str, HookFn]]:
        if self.mode not in ("boost", "remove"):
            raise ValueError(f"mode must be 'boost' or 'remove', got {self.mode!r}.")
        layers = check_layers(model, list(self.layers) if self.layers is not None else list(self.subspace.bases))
        hooks = []
        for layer in layers:
            if layer not in self.subspace.bases:
                raise ValueError(f"The subspace has no basis at layer {layer}.")
            basis = self.subspace.bases[layer].to(model.cfg.device, model.cfg.dtype)  # [k, d]

            def edit(activation: Tensor, hook, basis=basis) -> Tensor:
                coefficients = activation @ basis.T  # [batch, pos, k]
                if self.mode == "boost":
                    return activation + torch.tanh(coefficients) @ basis
                return activation - torch.relu(coefficients) @ basis

            hooks.append((residual_hook_name(layer, self.subspace.hook), edit))
        return hooks

    def describe(self) -> dict[str, Any]:
        return {"kind": "subspace_edit", "mode": self.mode, "variance": self.subspace.variance,
                "dims": {layer: int(b.shape[0]) for layer, b in self.subspace.bases.items()}}


# --- studies -----------------------------------------------------------------------------------------


def sweep(
    vector: SteeringVector,
    layers: Sequence[int],
    multipliers: Sequence[float],
    evaluate: Callable[[list[AddVector]], dict[str, Any]],
    *,
    start: str | None = "instruction_end",
    progress: bool | str = False,
) -> list[dict[str, Any]]:
    """Evaluate ``evaluate(interventions)`` for every layer x multiplier (multiplier 0 runs unsteered).

    Returns one row per setting: ``{"layer", "multiplier", "relative_multiplier", **evaluate(...)}``, where
    ``relative_multiplier`` is the added norm as a share of the layer's mean residual norm."""
    from tqdm.auto import tqdm

    settings = [(layer, m) for layer in layers for m in multipliers]
    rows = []
    for layer, multiplier in tqdm(settings, desc=progress if isinstance(progress, str) else "sweep",
                                  disable=not progress):
        interventions = [AddVector(vector, multiplier, [layer], start=start)] if multiplier else []
        rows.append({"layer": layer, "multiplier": multiplier,
                     "relative_multiplier": vector.relative_multiplier(multiplier, layer), **evaluate(interventions)})
    return rows


def orient(
    vector: SteeringVector,
    measure: Callable[[list[AddVector]], float],
    layer: int,
    multiplier: float,
    *,
    start: str | None = "instruction_end",
) -> tuple[SteeringVector, dict[str, Any]]:
    """Fix the sign by measurement: if adding ``+multiplier x vector`` at ``layer`` lowers ``measure``
    (e.g. the mean preference for the positive side on training pairs) relative to ``-multiplier``, the
    vector is flipped, so a positive multiplier moves toward the side the vector is named for.

    Returns the (possibly flipped) vector and a record of the calibration for provenance."""
    up = measure([AddVector(vector, multiplier, [layer], start=start)])
    down = measure([AddVector(vector, -multiplier, [layer], start=start)])
    flipped = up < down
    record = {"layer": layer, "multiplier": multiplier, "measure_plus": up, "measure_minus": down, "flipped": flipped}
    out = -vector if flipped else vector
    out.provenance = {**out.provenance, "orientation": record}
    out.name = vector.name
    return out, record
