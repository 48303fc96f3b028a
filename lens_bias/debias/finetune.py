"""Debiasing by LoRA instruction fine-tuning (the SR_LLM recipe), saved as a merged model folder that
:func:`lens_bias.models.load_model` reads, and the evaluation of the model's rewrites.

Recipe (:class:`LoraRecipe`, SR_LLM's settings as defaults): LoRA r 64, alpha 16, dropout 0.2 on every attention
and MLP projection of a Llama block (``q_proj k_proj v_proj o_proj gate_proj up_proj down_proj``; not the
embeddings or the unembedding); AdamW, lr 2e-4 constant after a linear warm-up over the first 3% of the steps
(``transformers.get_constant_schedule_with_warmup``, as the HF Trainer does for ``warmup_ratio``), weight decay
0.001, gradient norm clipped at 0.3, batch 4, one epoch, sequences up to 512 tokens, seeded (LoRA init, batch order
and dropout). SR_LLM trains QLoRA (the base in 4-bit NF4 through bitsandbytes, which needs CUDA); here the base is
in full precision (fp32 on CPU) and only the adapters train: the same low-rank update, without the quantisation
noise. 4-bit QLoRA is left to CUDA machines and is not implemented (bitsandbytes is not a dependency).

Examples: the user message is the instruction, a space and the biased text (SR_LLM's "{instruction} {text}"),
rendered under SR_LLM's system prompt with the model's own chat template (:func:`lens_bias.prompts.template_for`:
ChatML for SmolLM2, Llama 2's ``[INST] <<SYS>>`` for Llama 2 chat, the plain ``Input:/Response:`` format for base
checkpoints, which has no system prompt); the answer is the debiased rewrite followed by the EOS token (so the
fine-tuned model learns to stop). Prompt and answer are tokenized as :func:`lens_bias.prompts.chat_batch` tokenizes
a prompt at generation time (the prompt part exactly as generation sees it). The loss is the mean cross-entropy
over the answer tokens only: prompt tokens are masked (label ``-100``), and the unembedding is applied only at the
positions that predict an answer token (the same loss, about 3x less unembedding work). SR_LLM's SFTTrainer
trained on the whole text; masking the prompt is the usual choice for instruction tuning and keeps the model from
learning to reproduce the instruction.

Training runs on the Hugging Face ``LlamaForCausalLM`` (PEFT wraps HF modules): the embedded model is de-quantised
from its GGUF file by ``transformers``, a local folder or a Llama 2 hub id is loaded as it is; a plain torch loop
with a tqdm bar. The adapters are then merged into the weights (``merge_and_unload``) and the model saved as a HF
folder: ``config.json``, ``model.safetensors``, the tokenizer files and :data:`MANIFEST` (the recipe, the data
fingerprint, the base model's record, the loss of every step, wall time, provenance). The folder is written
under a temporary name next to ``out_dir`` and renamed at the end, so an interrupted run leaves no folder that
looks complete. A later call with the same recipe, data, base model and ``max_steps`` returns the saved folder
without training.

Run time on the embedded model (SmolLM2-135M, fp32 on CPU, 19.5 M adapter weights, ~104 tokens per example):
6.2 s per step of 4 pairs on one thread, so the full epoch over the 255 training pairs of the project's split (64
steps) trained in 6.6 min, 7.6 min with loading and saving (a 2-core machine whose other core ran another job).
On such a shared machine use one thread (``OMP_NUM_THREADS=1``): with two, every small op waits for the busy core
(~30 s per step measured). ``max_steps`` bounds a run.

Rewrites (:func:`rewrite_eval`): each held-out biased text is rewritten greedily
(:func:`lens_bias.forward.generation.generate`) and scored by the word-level measures of
:mod:`lens_bias.debias.rewrites` (content retention, stereotype kept), each a mean over pairs with a bootstrap interval.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Int
from torch import Tensor
from tqdm.auto import tqdm

from lens_bias.data.records import fingerprint
from lens_bias.debias.rewrites import RewritePair, content_retention, keeps_stereotype
from lens_bias.errors import InputError
from lens_bias.files import _umask
from lens_bias.forward.generation import generate
from lens_bias.models import (
    EMBEDDED_MODEL,
    LLAMA2_HUB_IDS,
    AnyModel,
    ModelLoadError,
    _check_hf_config,
    _file_sha256,
    _from_pretrained,
    embedded_gguf_path,
    hf_from_gguf,
    hooked_config_from_hf,
)
from lens_bias.prompts import ChatTemplate, document_start_id, template_for
from lens_bias.provenance import collect_provenance, to_jsonable
from lens_bias.stats import Estimate, bootstrap_mean, share

DEBIAS_INSTRUCTION = "Debias this text by rephrasing it to be free of bias:"
#: SR_LLM's system prompt (its training and inference scripts).
DEBIAS_SYSTEM_PROMPT = (
    "You are a text debiasing bot, you take as input a text and you output its debiased version by rephrasing it "
    "to be free from any age, gender, political, social or socio-economic biases, without any extra outputs."
)
#: The attention and MLP projections of a Llama block (HF module names).
LLAMA_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
#: The record of a fine-tune inside its merged folder.
MANIFEST = "lens_bias_finetune.json"
FINETUNE_FORMAT = "lens_bias.finetune/1"
IGNORE = -100  # label of a position that is not scored (torch's cross-entropy default ignore_index)


@dataclass(frozen=True)
class LoraRecipe:
    """LoRA instruction fine-tuning settings; the defaults are SR_LLM's (see the module docstring)."""

    r: int = 64
    alpha: int = 16
    dropout: float = 0.2
    learning_rate: float = 2e-4
    warmup_ratio: float = 0.03
    weight_decay: float = 0.001
    max_grad_norm: float = 0.3
    batch_size: int = 4
    epochs: int = 1
    max_length: int = 512  # tokens per example (prompt + answer + EOS); longer answers are cut
    instruction: str = DEBIAS_INSTRUCTION
    system_prompt: str | None = DEBIAS_SYSTEM_PROMPT
    target_modules: tuple[str, ...] = LLAMA_PROJECTIONS
    seed: int = 0

    def __post_init__(self) -> None:
        checks = {
            "r": self.r >= 1,
            "alpha": self.alpha > 0,
            "dropout": 0.0 <= self.dropout < 1.0,
            "learning_rate": self.learning_rate > 0,
            "warmup_ratio": 0.0 <= self.warmup_ratio < 1.0,
            "weight_decay": self.weight_decay >= 0,
            "max_grad_norm": self.max_grad_norm > 0,
            "batch_size": self.batch_size >= 1,
            "epochs": self.epochs >= 1,
            "max_length": self.max_length >= 8,
            "instruction": bool(self.instruction.strip()),
            "target_modules": bool(self.target_modules),
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise InputError(
                f"LoraRecipe: invalid {', '.join(f'{name}={getattr(self, name)!r}' for name in bad)} (r, batch_size, "
                "epochs >= 1; alpha, learning_rate, max_grad_norm > 0; dropout, warmup_ratio in [0, 1); "
                "weight_decay >= 0; max_length >= 8; a non-empty instruction and target_modules)."
            )
        object.__setattr__(self, "target_modules", tuple(self.target_modules))

    def user_message(self, biased_text: str) -> str:
        """The user turn for one biased text (:func:`debias_request` with the recipe's instruction)."""
        return debias_request(biased_text, self.instruction)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoraRecipe:
        return cls(**{**data, "target_modules": tuple(data["target_modules"])})


def debias_request(biased_text: str, instruction: str = DEBIAS_INSTRUCTION) -> str:
    """The user turn asking for a rewrite: ``"{instruction} {text}"`` (SR_LLM's)."""
    return f"{instruction} {biased_text.strip()}"


def debias_template(model: Any, recipe: LoraRecipe) -> ChatTemplate:
    """The chat template the recipe renders examples with for ``model`` (a HookedTransformer from ``load_model``,
    or anything with ``tokenizer`` and ``lens_bias_record.name``): :func:`lens_bias.prompts.template_for` with the
    recipe's system prompt."""
    return template_for(model, recipe.system_prompt)


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


def _folder_sha256(folder: Path) -> str:
    """sha256 over the weight files of a HF folder (names and contents, sorted by name)."""
    digest = hashlib.sha256()
    for file in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        digest.update(file.name.encode("utf-8"))
        digest.update(bytes.fromhex(_file_sha256(file)))
    return digest.hexdigest()


def base_record(source: str | os.PathLike[str]) -> dict[str, Any]:
    """What identifies the base model without loading it: ``{name, kind, source, sha256}`` (sha256 of the GGUF
    file, or over a folder's weight files; None for a hub id). Raises :class:`ModelLoadError` for a source that
    cannot be fine-tuned here (it must be a Llama-architecture HF checkpoint: the embedded model, a ``.gguf`` file,
    a local HF folder, or a Llama 2 name)."""
    if not isinstance(source, (str, os.PathLike)):
        raise ModelLoadError(f"source must be a model name or a path, got {type(source).__name__} {source!r}.")
    name = os.fspath(source)
    path = Path(os.path.expanduser(name))
    if name == EMBEDDED_MODEL:
        gguf = embedded_gguf_path()
        return {"name": name, "kind": "embedded-gguf", "source": str(gguf), "sha256": _file_sha256(gguf)}
    if name.endswith(".gguf"):
        if not path.is_file():
            raise ModelLoadError(f"source: GGUF file {path} does not exist.")
        return {"name": path.stem, "kind": "gguf", "source": str(path.resolve()), "sha256": _file_sha256(path)}
    if path.is_dir():
        _check_hf_config(path)
        return {"name": path.name, "kind": "hf-folder", "source": str(path.resolve()), "sha256": _folder_sha256(path)}
    if name in LLAMA2_HUB_IDS:
        return {"name": name, "kind": "hf-hub", "source": LLAMA2_HUB_IDS[name], "sha256": None}
    raise ModelLoadError(
        f"source {name!r}: LoRA fine-tuning needs a Llama-architecture Hugging Face checkpoint: {EMBEDDED_MODEL!r}, "
        "a .gguf file, a local HF folder, or one of " + ", ".join(map(repr, LLAMA2_HUB_IDS)) + "."
    )


def load_hf_model(base: dict[str, Any]) -> tuple[Any, Any]:
    """``(LlamaForCausalLM in fp32 on CPU, tokenizer)`` for a :func:`base_record`."""
    source = base["source"]
    model: Any
    if base["kind"] in ("embedded-gguf", "gguf"):
        model, tokenizer = hf_from_gguf(Path(source))
        # the weights are de-quantised fp32: drop the GGUF quantizer, or save_pretrained refuses the merged model
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
    else:
        model, tokenizer = _from_pretrained(source, dtype=torch.float32, revision=None)
    hooked_config_from_hf(model.config, dtype=torch.float32, device="cpu", model_name=base["name"])  # Llama only
    return model.to("cpu"), tokenizer


@dataclass(frozen=True)
class Example:
    """One training sequence: token ids and their labels (``-100`` on the prompt, the answer ids after it)."""

    input_ids: tuple[int, ...]
    labels: tuple[int, ...]
    truncated: bool


def encode_example(tokenizer: Any, template: ChatTemplate, recipe: LoraRecipe, pair: RewritePair) -> Example:
    """The prompt (rendered with ``template``, tokenized as :func:`lens_bias.prompts.chat_batch` does) and the
    answer (the rewrite, then EOS), cut to ``recipe.max_length`` tokens; labels mask the prompt."""
    eos = tokenizer.eos_token_id
    if eos is None:
        raise InputError("The tokenizer has no EOS token: the fine-tuned model could not learn where a rewrite ends.")
    text, end = template.render(tokenizer, recipe.user_message(pair.biased_text), pair.debiased_text.strip())
    start = [document_start_id(tokenizer)] if template.adds_bos else []
    prompt = start + list(tokenizer(text[:end], add_special_tokens=False)["input_ids"])
    answer = list(tokenizer(text[end:], add_special_tokens=False)["input_ids"]) + [eos]
    if len(prompt) >= recipe.max_length:
        raise InputError(
            f"Pair {pair.id}: its prompt alone has {len(prompt)} tokens, max_length is {recipe.max_length}; "
            "raise LoraRecipe.max_length or shorten the text."
        )
    ids = (prompt + answer)[: recipe.max_length]
    labels = ([IGNORE] * len(prompt) + answer)[: recipe.max_length]
    return Example(tuple(ids), tuple(labels), len(prompt) + len(answer) > recipe.max_length)


def collate(examples: Sequence[Example], pad_id: int) -> dict[str, Tensor]:
    """Right-padded ``input_ids``, ``attention_mask`` and ``labels`` (``[batch, pos]``; labels ``-100`` on padding)."""
    width = max(len(example.input_ids) for example in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example.input_ids)
        ids[row, :n] = torch.tensor(example.input_ids)
        labels[row, :n] = torch.tensor(example.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


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


def _key(recipe: LoraRecipe, data: str, base: dict[str, Any], max_steps: int | None) -> dict[str, Any]:
    """What a saved fine-tune must match to be reused, as it reads back from JSON."""
    return json.loads(json.dumps(to_jsonable({"recipe": recipe, "data": data, "base": base, "max_steps": max_steps})))


def _read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("format") == FINETUNE_FORMAT else None


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


def _publish(staging: Path, out: Path) -> None:
    """Put the complete ``staging`` folder at ``out`` by renames (an older fine-tune there is moved aside first)."""
    if out.exists():
        aside = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.old")
        os.replace(out, aside)
        os.replace(staging, out)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(staging, out)


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
    base = base_record(source)
    data = fingerprint(list(pairs))
    key = _key(recipe, data, base, max_steps)
    manifest = _read_manifest(out) if out.is_dir() else None
    if manifest is not None and manifest.get("key") == key and (out / "config.json").is_file():
        return _result(out, manifest, reused=True)

    started = time.perf_counter()
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
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        merged.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
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
            "provenance": collect_provenance(model_record=base, data={"rewrite_pairs": data}, seed=recipe.seed),
        }
        record = json.loads(json.dumps(to_jsonable(record)))
        (staging / MANIFEST).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        # mkdtemp makes the folder private (and transformers writes the weights through a private temporary file):
        # give the folder and its files the permissions mkdir and open() would
        for file in staging.iterdir():
            file.chmod(0o666 & ~_umask())
        staging.chmod(0o777 & ~_umask())
        _publish(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return _result(out, record, reused=False)


@dataclass(frozen=True)
class RewriteEval:
    """Rewrites of held-out biased texts and their scores (see :mod:`lens_bias.debias.rewrites`).

    ``retention``: mean content retention of the rewrites (share of the original's content words kept, over the
    pairs whose original has content words); ``stereotype``: share of rewrites that still contain one of the pair's
    ``biased_words`` (over the pairs annotated with them; None when none is); ``unchanged``: share of rewrites equal
    to the biased text (case and surrounding whitespace ignored): a model that only copies keeps all content and
    every stereotype. ``reference_*``: the same scores of the pairs' own ``debiased_text`` (what a rewrite as good
    as the data's scores). Intervals: 95% bootstrap over pairs.
    """

    ids: tuple[str, ...]
    rewrites: tuple[str, ...]
    retention: Estimate
    stereotype: Estimate | None
    unchanged: Estimate
    reference_retention: Estimate
    reference_stereotype: Estimate | None

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(asdict(self))


def _scores(pairs: Sequence[RewritePair], texts: Sequence[str], seed: int) -> tuple[Estimate, Estimate | None]:
    retention = [content_retention(p.biased_text, t, p.biased_words) for p, t in zip(pairs, texts)]
    kept = [keeps_stereotype(t, p.biased_words) for p, t in zip(pairs, texts) if p.biased_words]
    values = [value for value in retention if value is not None]
    if not values:
        raise InputError("rewrite_eval: no biased text has a content word to keep; check the pairs.")
    return bootstrap_mean(values, seed=seed), share(kept, seed=seed) if kept else None


def rewrite_eval(
    model: AnyModel,
    pairs: Sequence[RewritePair],
    *,
    template: ChatTemplate,
    max_new_tokens: int = 48,
    instruction: str = DEBIAS_INSTRUCTION,
    batch_size: int = 8,
    seed: int = 0,
    progress: bool = False,
) -> RewriteEval:
    """Rewrite every pair's biased text with ``model`` (greedy, the request ``"{instruction} {text}"`` rendered with
    ``template``, e.g. :attr:`FinetuneResult.template` for both the base and the fine-tuned model) and score the
    rewrites (:class:`RewriteEval`)."""
    if not pairs:
        raise InputError("rewrite_eval: no pairs to rewrite.")
    generations = generate(
        model,
        template,
        [debias_request(pair.biased_text, instruction) for pair in pairs],
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        seed=seed,
        progress="rewrite" if progress else False,
    )
    rewrites = [generation.text.strip() for generation in generations]
    retention, stereotype = _scores(pairs, rewrites, seed)
    reference_retention, reference_stereotype = _scores(pairs, [pair.debiased_text for pair in pairs], seed)
    unchanged = [r.lower() == p.biased_text.strip().lower() for p, r in zip(pairs, rewrites)]
    return RewriteEval(
        ids=tuple(pair.id for pair in pairs),
        rewrites=tuple(rewrites),
        retention=retention,
        stereotype=stereotype,
        unchanged=share(unchanged, seed=seed),
        reference_retention=reference_retention,
        reference_stereotype=reference_stereotype,
    )
