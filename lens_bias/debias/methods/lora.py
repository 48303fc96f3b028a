"""``lora``: the SR_LLM-recipe LoRA fine-tune, a new checkpoint (a merged model folder) scored as it is."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from transformer_lens import HookedTransformer

from lens_bias.cache import key_sha256
from lens_bias.debias.lora import LoraRecipe, finetune_lora
from lens_bias.debias.methods.base import Candidate, FitContext, MethodConfig, register
from lens_bias.debias.rewrites import load_rewrite_pairs, split_rewrites
from lens_bias.errors import InputError
from lens_bias.models import attach_record, load_model, model_record


@register("lora")
@dataclass(frozen=True)
class LoraFinetune(MethodConfig):
    """The SR_LLM-recipe LoRA fine-tune of the base model (``context.source``, what
    :func:`lens_bias.models.load_model` accepts) on the train side (``1 - held_out``) of the rewrite pairs of
    ``data`` (None: the project's own set), ``max_steps`` at most (None: one epoch), merged and saved in
    ``{folder}/lora`` (reused while recipe, data, base and ``max_steps`` hold), loaded back as a model.

    The loaded model's record gets ``revision`` = the fine-tune's key hash: a folder's record names only its
    path, and a retrained folder must not reuse the scoring cells of the old weights."""

    data: Path | None = field(default=None, metadata={"option": "lora_data"})
    held_out: float = 0.3
    max_steps: int | None = field(default=None, metadata={"option": "lora_max_steps"})

    def __post_init__(self) -> None:
        if self.data is not None and not Path(self.data).is_file():
            raise InputError(
                f"data (--lora-data) {self.data}: no such file; give a CSV with biased_text,debiased_text."
            )
        if self.data is not None:  # its pairs and their split are checked before any model loads
            split_rewrites(load_rewrite_pairs(self.data), held_out=self.held_out)

    def fit(self, model: HookedTransformer, context: FitContext) -> Candidate:
        if context.source is None:
            raise InputError("The LoRA fine-tune starts from the base model's source: give FitContext(source=...).")
        train, _ = split_rewrites(load_rewrite_pairs(self.data), held_out=self.held_out, seed=context.seed)
        recipe = LoraRecipe(seed=context.seed)
        folder = Path(context.folder) / "lora"
        result = finetune_lora(
            context.source, train, recipe, folder, progress=context.progress, max_steps=self.max_steps
        )
        tuned = load_model(str(result.folder), device=context.device)
        fit = {name: result.to_dict()[name] for name in ("recipe", "data", "base", "max_steps")}
        revision = key_sha256(fit)[:16]
        attach_record(tuned, replace(model_record(tuned), revision=revision))
        details = {k: v for k, v in result.to_dict().items() if k != "losses"}
        details["loss_first_last"] = [result.losses[0], result.losses[-1]]
        return Candidate(
            "LoRA fine-tune (SR_LLM recipe)",
            "fine-tuning",
            model=tuned,
            artefacts=[str(result.folder)],
            details=details,
        )
