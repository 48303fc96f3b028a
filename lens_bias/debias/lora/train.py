"""LoRA instruction fine-tuning of a Llama-architecture model (the recipe of :mod:`lens_bias.debias.lora.recipe`),
saved as a merged model folder that :func:`lens_bias.models.load_model` reads.

Training runs on the Hugging Face ``LlamaForCausalLM`` (PEFT wraps HF modules), loaded by
:func:`lens_bias.models.load_hf` (the embedded model de-quantised from its GGUF file, a local folder or a Llama 2
hub id as it is); a plain torch loop with a tqdm bar. The loss is the mean cross-entropy over the answer tokens,
the unembedding applied only at the positions that predict an answer token (the same loss, about 3x less
unembedding work). The adapters are then merged into the weights (``merge_and_unload``) and the model saved as a HF
folder: ``config.json``, ``model.safetensors``, the tokenizer files and :data:`MANIFEST` (the recipe, the data
fingerprint, the base model's record, the loss of every step, wall time, provenance). The folder is an artefact of
:mod:`lens_bias.cache` (written atomically, its record ``{out_dir}.cache.json`` beside it): a later call with the
same recipe, data, base model and ``max_steps`` returns the saved folder without training, when every file is the
one written.

Run time on the embedded model (SmolLM2-135M, fp32 on CPU, 19.5 M adapter weights, ~104 tokens per example):
6.2 s per step of 4 pairs on one thread, so the full epoch over the 255 training pairs of the project's split (64
steps) trained in 6.6 min, 7.6 min with loading and saving (a 2-core machine whose other core ran another job).
On such a shared machine use one thread (``OMP_NUM_THREADS=1``): with two, every small op waits for the busy core
(~30 s per step measured). ``max_steps`` bounds a run.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Int
from torch import Tensor
from tqdm.auto import tqdm

from lens_bias.cache import cached
from lens_bias.data.records import fingerprint
from lens_bias.debias.lora.recipe import IGNORE, Example, LoraRecipe, collate, debias_template, encode_example
from lens_bias.debias.rewrites import RewritePair
from lens_bias.errors import InputError
from lens_bias.models import (
    EMBEDDED_MODEL,
    HF_KINDS,
    LLAMA2_HUB_IDS,
    ModelLoadError,
    ModelSource,
    check_hf_config,
    hooked_config_from_hf,
    load_hf,
    resolve_model,
)
from lens_bias.prompts import ChatTemplate
from lens_bias.provenance import collect_provenance, to_jsonable

#: The record of a fine-tune inside its merged folder.
MANIFEST = "lens_bias_finetune.json"
FINETUNE_FORMAT = "lens_bias.finetune/1"


@dataclass(frozen=True)
class FinetuneResult:
    """A saved fine-tune: the merged model ``folder`` (``load_model(folder)`` reads it) and how it was made.

    ``losses``: the training loss (mean cross-entropy over answer tokens, nats) of every step; ``template``: the
    chat template the examples were rendered with (evaluate the model with it); ``wall_s``: seconds of loading,
    training, merging and saving (of the run that trained, also when ``reused``); ``base``: the base model's record
    (:func:`base_record`); ``data``: the fingerprint of the training pairs.
    """

    folder: Path
    recipe: LoraRecipe
    template: ChatTemplate
    losses: tuple[float, ...]
    steps: int
    n_pairs: int
    wall_s: float
    base: dict[str, Any]
    data: str
    max_steps: int | None
    reused: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "recipe": self.recipe.to_dict(),
            "template": {"name": self.template.name, "system": self.template.system},
            "losses": list(self.losses),
            "steps": self.steps,
            "n_pairs": self.n_pairs,
            "wall_s": self.wall_s,
            "base": self.base,
            "data": self.data,
            "max_steps": self.max_steps,
            "reused": self.reused,
            "details": self.details,
        }


def base_record(source: str | os.PathLike[str]) -> dict[str, Any]:
    """What identifies the base model without loading it: ``{name, kind, source, sha256}``
    (:func:`lens_bias.models.resolve_model`: sha256 of the GGUF file, or over a folder's weight files; None for a hub
    id). Raises :class:`ModelLoadError` for a source that cannot be fine-tuned here (it must be a Llama-architecture
    HF checkpoint: the embedded model, a ``.gguf`` file, a local HF folder, or a Llama 2 name)."""
    resolved = resolve_model(source)
    folder = Path(resolved.folder) if resolved.folder is not None else None
    if resolved.kind not in HF_KINDS or (folder is not None and check_hf_config(folder)["model_type"] != "llama"):
        raise ModelLoadError(
            f"source {resolved.name!r}: LoRA fine-tuning needs a Llama-architecture Hugging Face checkpoint: "
            f"{EMBEDDED_MODEL!r}, a .gguf file, a local HF folder or hub id of a Llama model, or one of "
            + ", ".join(map(repr, LLAMA2_HUB_IDS))
            + "."
        )
    return resolved.to_dict()


def load_hf_model(base: dict[str, Any]) -> tuple[Any, Any]:
    """``(LlamaForCausalLM in fp32 on CPU, tokenizer)`` for a :func:`base_record`."""
    model, tokenizer = load_hf(ModelSource(**base), dtype=torch.float32)
    hooked_config_from_hf(model.config, dtype=torch.float32, device="cpu", model_name=base["name"])  # Llama only
    return model.to("cpu"), tokenizer


def answer_loss(
    causal_lm: Any,
    input_ids: Int[Tensor, "batch pos"],
    attention_mask: Int[Tensor, "batch pos"],
    labels: Int[Tensor, "batch pos"],
) -> Tensor:
    """Mean next-token cross-entropy (nats) over the labelled positions, the unembedding applied only where
    position ``t`` predicts a labelled token ``t + 1`` (HF's causal-LM loss, without the other logits)."""
    hidden = causal_lm.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    targets = labels[:, 1:]
    scored = targets != IGNORE
    logits = causal_lm.lm_head(hidden[:, :-1][scored]).float()
    return F.cross_entropy(logits, targets[scored])


def train_lora(
    hf_model: Any,
    examples: Sequence[Example],
    recipe: LoraRecipe,
    pad_id: int,
    *,
    max_steps: int | None = None,
    progress: bool = True,
) -> tuple[Any, list[float]]:
    """Wrap ``hf_model`` in LoRA adapters (PEFT) and train them on ``examples``; ``(peft model, loss per step)``.

    Steps: ``epochs * ceil(n / batch_size)``, at most ``max_steps``; each epoch visits the examples in a seeded
    random order. Only the adapter weights train; the base weights stay as they are until merged.
    """
    from peft import LoraConfig, get_peft_model
    from transformers import get_constant_schedule_with_warmup

    torch.manual_seed(recipe.seed)
    config = LoraConfig(
        r=recipe.r,
        lora_alpha=recipe.alpha,
        lora_dropout=recipe.dropout,
        target_modules=list(recipe.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(hf_model, config)
    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    per_epoch = math.ceil(len(examples) / recipe.batch_size)
    total = per_epoch * recipe.epochs if max_steps is None else min(per_epoch * recipe.epochs, max_steps)
    optimizer = torch.optim.AdamW(trainable, lr=recipe.learning_rate, weight_decay=recipe.weight_decay)
    schedule = get_constant_schedule_with_warmup(optimizer, math.ceil(recipe.warmup_ratio * total))
    order = torch.Generator().manual_seed(recipe.seed)
    causal_lm = model.get_base_model()
    model.train()
    losses: list[float] = []
    bar = tqdm(range(total), desc="LoRA fine-tune", disable=not progress, leave=False)
    for step in bar:
        if step % per_epoch == 0:
            permutation = torch.randperm(len(examples), generator=order).tolist()
        rows = permutation[(step % per_epoch) * recipe.batch_size :][: recipe.batch_size]
        loss = answer_loss(causal_lm, **collate([examples[i] for i in rows], pad_id))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, recipe.max_grad_norm)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    model.eval()
    return model, losses


def _read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("format") == FINETUNE_FORMAT else None


def _load_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of a saved fine-tune (an error when it has none: the cache then trains again)."""
    manifest = _read_manifest(folder)
    if manifest is None:
        raise InputError(f"{folder} holds no {FINETUNE_FORMAT} manifest {MANIFEST}.")
    return manifest


def _result(folder: Path, manifest: dict[str, Any], reused: bool) -> FinetuneResult:
    key, template = manifest["key"], manifest["template"]
    return FinetuneResult(
        folder=folder,
        recipe=LoraRecipe.from_dict(key["recipe"]),
        template=ChatTemplate(template["name"], template["system"]),
        losses=tuple(manifest["losses"]),
        steps=manifest["steps"],
        n_pairs=manifest["n_pairs"],
        wall_s=manifest["wall_s"],
        base=key["base"],
        data=key["data"],
        max_steps=key["max_steps"],
        reused=reused,
        details=manifest["details"],
    )


def _train_and_save(folder: Path, key: dict[str, Any], pairs: Sequence[RewritePair], progress: bool) -> None:
    """Train the fine-tune of ``key`` (its recipe, base and ``max_steps``) on ``pairs``, merge the adapters and
    write the merged model with its :data:`MANIFEST` into ``folder``."""
    started = time.perf_counter()
    recipe, base, max_steps = key["recipe"], key["base"], key["max_steps"]
    hf_model, tokenizer = load_hf_model(base)
    template = debias_template(
        SimpleNamespace(tokenizer=tokenizer, lens_bias_record=SimpleNamespace(name=base["name"])), recipe
    )
    examples = [encode_example(tokenizer, template, recipe, pair) for pair in pairs]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    train_started = time.perf_counter()
    model, losses = train_lora(hf_model, examples, recipe, pad_id, max_steps=max_steps, progress=progress)
    train_s = time.perf_counter() - train_started
    trainable = sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)
    merged = model.merge_and_unload()
    merged.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    lengths = [len(example.input_ids) for example in examples]
    record = {
        "format": FINETUNE_FORMAT,
        "key": key,
        "template": {"name": template.name, "system": template.system},
        "losses": losses,
        "steps": len(losses),
        "n_pairs": len(pairs),
        "wall_s": time.perf_counter() - started,
        "details": {
            "train_s": train_s,
            "step_s": train_s / max(1, len(losses)),
            "trainable_parameters": trainable,
            "tokens_per_example": {"mean": float(np.mean(lengths)), "max": max(lengths)},
            "n_truncated": sum(example.truncated for example in examples),
            "torch_threads": torch.get_num_threads(),
            "quantization": "none (full-precision LoRA; SR_LLM's 4-bit NF4 QLoRA needs CUDA)",
        },
        "provenance": collect_provenance(model_record=base, data={"rewrite_pairs": key["data"]}, seed=recipe.seed),
    }
    record = json.loads(json.dumps(to_jsonable(record)))
    (folder / MANIFEST).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")


def finetune_lora(
    source: str | os.PathLike[str],
    pairs: Sequence[RewritePair],
    recipe: LoraRecipe,
    out_dir: str | Path,
    *,
    progress: bool = True,
    max_steps: int | None = None,
) -> FinetuneResult:
    """LoRA-fine-tune ``source`` on ``pairs`` with ``recipe``, merge the adapters and save the model at ``out_dir``.

    Args:
        source: what :func:`lens_bias.models.load_model` accepts, of Llama architecture: ``"smollm2-135m-instruct"``
            (the embedded model), a ``.gguf`` file, a local HF folder, or a Llama 2 name.
        pairs: the training pairs (e.g. the train side of :func:`lens_bias.debias.rewrites.split_rewrites`).
        recipe: the settings (``LoraRecipe()``: SR_LLM's).
        out_dir: the merged model folder to write; an existing fine-tune there with the same recipe, data, base
            model and ``max_steps`` is returned as it is (``reused=True``), another fine-tune is replaced; a folder
            that is not a fine-tune is refused.
        max_steps: stop after this many optimiser steps (None: the full ``recipe.epochs``).

    Returns:
        The :class:`FinetuneResult`; ``load_model(result.folder)`` loads the fine-tuned model.
    """
    if not isinstance(recipe, LoraRecipe):
        raise InputError(f"recipe must be a LoraRecipe, got {type(recipe).__name__}.")
    if not pairs:
        raise InputError("pairs: the training set is empty; load pairs with load_rewrite_pairs.")
    if not all(isinstance(pair, RewritePair) for pair in pairs):
        raise InputError("pairs must be RewritePair records (load them with load_rewrite_pairs).")
    if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1):
        raise InputError(f"max_steps must be a positive integer or None (the full epochs), got {max_steps!r}.")
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise InputError(f"out_dir {out} is a file; pass a folder path for the merged model.")
    if out.is_dir() and any(out.iterdir()) and _read_manifest(out) is None:
        raise InputError(
            f"out_dir {out} is a non-empty folder that holds no fine-tune ({MANIFEST}); pass a new or empty folder "
            "(it is not overwritten)."
        )
    key = {"recipe": recipe, "data": fingerprint(list(pairs)), "base": base_record(source), "max_steps": max_steps}
    saved = cached(
        out,
        key,
        lambda staging: _train_and_save(staging, key, pairs, progress),
        _load_manifest,
        what="fine-tune",
    )
    return _result(out, saved.value, reused=saved.reused)
