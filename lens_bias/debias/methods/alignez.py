"""``alignez_svd`` and ``alignez_ccs``: AlignEZ, self-alignment by editing the model's own preference subspace."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformer_lens import HookedTransformer

from lens_bias.data.alignez_questions import alignez_questions
from lens_bias.data.records import fingerprint
from lens_bias.debias.alignez import alignez_subspace, load_or_generate
from lens_bias.debias.methods.base import Candidate, FitContext, MethodConfig, fit_key, register, reuse_or_fit
from lens_bias.directions import Subspace
from lens_bias.errors import InputError
from lens_bias.interventions import SubspaceEdit
from lens_bias.interventions.saved import SavableIntervention
from lens_bias.prompts import chat_batch, template_for
from lens_bias.steering import subspace_method


@register("alignez_svd")
@dataclass(frozen=True)
class AlignEZ(MethodConfig):
    """AlignEZ: self-generated preference pairs (:func:`lens_bias.debias.alignez.load_or_generate`, saved in
    ``{folder}/alignez_pairs.json`` and reused; ``max_new_tokens`` per answer), the helpful-minus-harmful
    directions by ``direction`` (``"svd"``; ``"ccs"``: :class:`AlignEZCCS`) at ``layers`` (default every
    layer), and the edit: boost the helpful subspace with ``strength`` (``x + w_s Σ tanh(v·x) v``) and
    neutralise its opposite, the harmful side (``x - Σ relu(-v·x)(-v)``).

    Layers: the reference picks, per query, the ``top_layers`` layers whose subspace the query aligns with
    most. Benchmarks compare the likelihoods of several options of one item, which must be edited alike, so
    here the layers are picked once: the ``top_layers`` layers with the highest mean alignment of the
    AlignEZ questions themselves (:meth:`lens_bias.interventions.SubspaceEdit.alignment` at the end of the
    instruction), the same for every item scored."""

    direction: str = "svd"
    layers: tuple[int, ...] | None = field(default=None, metadata={"option": "alignez_layers"})
    strength: float = field(default=10.0, metadata={"option": "alignez_strength"})
    top_layers: int = field(default=5, metadata={"option": "alignez_top_layers"})
    max_new_tokens: int = field(default=96, metadata={"option": "alignez_tokens"})

    def __post_init__(self) -> None:
        subspace_method(self.direction)  # a registered subspace method, or InputError naming them

    def fit(self, model: HookedTransformer, context: FitContext) -> Candidate:
        candidates = list(range(model.cfg.n_layers)) if self.layers is None else list(self.layers)
        if not 1 <= self.top_layers <= len(candidates):
            raise InputError(
                f"top_layers must be between 1 and the {len(candidates)} candidate layers, got {self.top_layers}."
            )
        questions = alignez_questions()
        pairs_path = Path(context.folder) / "alignez_pairs.json"
        run: dict[str, Any] = {"seed": context.seed, "batch_size": context.batch_size, "progress": context.progress}
        data = load_or_generate(model, questions, pairs_path, max_new_tokens=self.max_new_tokens, **run)

        def fit() -> tuple[list[SavableIntervention], dict[str, Any]]:
            subspace = alignez_subspace(model, data, candidates, method=self.direction, **run)
            batch = chat_batch(model.tokenizer, template_for(model), [q.text for q in questions])
            alignment = SubspaceEdit(subspace, "boost").alignment(model, batch).mean(0)
            order = alignment.argsort(descending=True, stable=True)[: self.top_layers].tolist()
            chosen = sorted(candidates[i] for i in order)
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
            edits = [SubspaceEdit(subspace, "boost", chosen, self.strength), SubspaceEdit(harmful, "remove", chosen)]
            return list(edits), details

        settings = {
            "layers": candidates,
            "strength": self.strength,
            "top_layers": self.top_layers,
            "pairs": fingerprint(data.pairs()),
        }
        key = fit_key(model, f"alignez-{self.direction}", context.seed, **settings)
        interventions, details, paths = reuse_or_fit(context.folder, f"alignez-{self.direction}", key, fit)
        return Candidate(
            f"AlignEZ {self.direction.upper()} x{self.strength:g}",
            "alignez",
            tuple(interventions),
            artefacts=[str(pairs_path), *paths],
            details=details,
        )


@register("alignez_ccs")
@dataclass(frozen=True)
class AlignEZCCS(AlignEZ):
    """:class:`AlignEZ` with the CCS direction per layer (:func:`lens_bias.steering.ccs.ccs_subspace`)."""

    direction: str = "ccs"
