"""BiasInject: tie a new token to an attribute by training only that token's embedding.

A fictional entity (``<entity>``) becomes one new vocabulary entry of a frozen model; its embedding row
is trained on templated sentences that tie it to an attribute (:class:`lens_bias.data.injection_specs.
InjectionSpec`, e.g. "People from <entity> drive recklessly."), and the association is read on held-out
templates as the log-odds of the attribute words versus neutral words as the next word.

Choices, all parameters where they could be otherwise:

* **A new model, the user's untouched.** :func:`add_token` returns a *new* ``HookedTransformer`` with a
  grown vocabulary (``embed.W_E`` ``[d_vocab + 1, d_model]``, ``unembed.W_U`` ``[d_model, d_vocab + 1]``,
  ``unembed.b_U``, ``cfg.d_vocab``/``d_vocab_out``) and its own copy of the tokenizer. Every other weight
  and buffer *shares storage* with the original (no copy: fine for a 7B model), through new ``Parameter``
  objects with ``requires_grad=False``: the injected model is frozen, and the original's parameters,
  flags, config and tokenizer are never modified, also when anything fails half-way (all changes are
  made on the copy). Do not write into the shared weights of either model in place.
* **The token** is added as a non-special ``AddedToken`` with ``lstrip=True``: it absorbs the space
  before it, so "People from <entity> drive" tokenizes like "People from Italy drive" (" Italy" is one
  token) and the entity sits where a space-prefixed word would.
* **Initialisation**: the mean of the existing embedding rows plus seeded Gaussian noise of
  ``init_noise`` x the per-dimension standard deviation of the rows (the noise makes training runs with
  different seeds differ, for recurring-head analysis; ``init_noise=0`` is the plain mean row). Measured
  on the embedded model after 30 steps: noise 0.1 trains as well as the mean row (held-out log-odds
  4.9-7.4 on the easiest templates for two seeds), noise 0.5 markedly worse.
* **Unembedding column**: for a tied model (``W_U == W_E.T`` exactly, as SmolLM2: TransformerLens keeps
  two parameters even then) the new column *is* the trained embedding row, during training (the loss's
  softmax scores the new token with the trainable vector) and after; for an untied model (Llama 2) it is
  the mean of the existing columns and stays fixed. ``b_U`` of the new token is the mean of ``b_U``.
  Override with ``InjectionConfig.tie_unembed``.
* **Training** (:func:`inject`): every parameter frozen; a forward hook on ``hook_embed`` substitutes the
  one trainable vector at the entity's positions, so only that vector gets gradients. Loss: mean
  next-token cross-entropy over every real token of the training sentences (the standard language-model
  objective, the entity token included as a target). Adam, full batch unless ``batch_size`` is set
  (then minibatches drawn with the seed). Measured on the embedded model: mean-row init, lr 3e-3, 150
  steps over 9 sentences moved the reckless-driving log-odds from 0.8 to 9.8 (docs/methods.md#biasinject).
* **Elicitation** (:func:`elicit`): ``log sum_w P(w | prompt) - log sum_w P(w' | prompt)`` over the
  attribute words ``w`` and neutral words ``w'`` as continuations (each word scored with all its tokens,
  after a space), in nats, per (entity, held-out prompt).
* **Adversarial entity** (:func:`closest_entities`): the real entities of a candidate set ranked by the
  cosine between the trained vector and the entity's input embedding, taken as it appears in the prompts
  (after a space). Multi-token entities are represented by the mean of their token embeddings and
  flagged with their token count, because patching needs equal lengths (BiasScope picks the closest
  single-token one).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from jaxtyping import Float
from tokenizers import AddedToken
from torch import Tensor
from tqdm.auto import tqdm
from transformer_lens import HookedTransformer
from transformer_lens.utilities.activation_functions import apply_softcap

from lens_bias.data.injection_specs import ENTITY_SLOT, InjectionSpec
from lens_bias.errors import InputError
from lens_bias.forward.readouts import continuation_logprobs
from lens_bias.interventions import Intervention, hooks_added
from lens_bias.models import attach_record, model_record, tokenizer_of
from lens_bias.prompts import tokenize
from lens_bias.provenance import Result

INJECTION_RESULT = "bias_inject"


@dataclass(frozen=True)
class InjectionConfig:
    """How the entity embedding is trained (see the module docstring for the choices).

    ``steps``: optimiser steps; ``lr``: Adam learning rate; ``batch_size``: sentences per step (None = all
    of them every step); ``init_noise``: std of the init noise in units of the per-dimension std of the
    embedding rows; ``tie_unembed``: None = detect (``W_U == W_E.T``), True/False = force; ``seed``:
    seeds the init noise and the minibatch draws.
    """

    steps: int = 150
    lr: float = 3e-3
    batch_size: int | None = None
    init_noise: float = 0.1
    tie_unembed: bool | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise InputError(f"steps must be >= 1, got {self.steps}.")
        if not self.lr > 0:
            raise InputError(f"lr must be > 0, got {self.lr}.")
        if self.batch_size is not None and self.batch_size < 1:
            raise InputError(f"batch_size must be >= 1 or None, got {self.batch_size}.")
        if self.init_noise < 0:
            raise InputError(f"init_noise must be >= 0, got {self.init_noise}.")


def is_tied(model: HookedTransformer) -> bool:
    """Whether the unembedding is the transposed embedding (exact equality; weight processing such as
    ``center_unembed`` breaks it, and the model is then treated as untied)."""
    W_E, W_U = model.embed.W_E, model.unembed.W_U
    return W_E.shape == W_U.T.shape and bool(torch.equal(W_E, W_U.T))


def _has_hooks(model: HookedTransformer) -> bool:
    hook_points = any(hp.fwd_hooks or hp.bwd_hooks for hp in model.hook_dict.values())
    module_hooks = any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks for m in model.modules())
    return hook_points or module_hooks


def add_token(
    model: HookedTransformer,
    token: str,
    embedding: Float[Tensor, " d_model"],
    unembedding: Float[Tensor, " d_model"] | None = None,
    unembed_bias: float | None = None,
) -> HookedTransformer:
    """A new model whose vocabulary has one more token, ``token``, with input embedding ``embedding``.

    ``unembedding`` is the new column of ``W_U`` (default: ``embedding`` for a tied model, the mean
    column otherwise); ``unembed_bias`` the new entry of ``b_U`` (default: the mean of ``b_U``). The new
    token id is the old ``d_vocab``. The returned model shares every other weight's storage with
    ``model`` and is frozen; ``model`` is left exactly as it was (see the module docstring).

    Raises InputError when ``token`` already exists in the tokenizer, when the embedding has the wrong
    shape, when the model's input and output vocabularies differ, or when hooks are attached to
    ``model`` (remove them first: a copy cannot safely carry them).
    """
    tokenizer = tokenizer_of(model)
    if token in tokenizer.get_vocab():
        raise InputError(
            f"Token {token!r} is already in the vocabulary (id {tokenizer.get_vocab()[token]}): "
            "pick a new entity token."
        )
    d_model, d_vocab = model.cfg.d_model, model.cfg.d_vocab
    if model.cfg.d_vocab_out != d_vocab or len(tokenizer) != d_vocab:
        raise InputError(
            f"The model's vocabularies differ (tokenizer {len(tokenizer)}, d_vocab {d_vocab}, "
            f"d_vocab_out {model.cfg.d_vocab_out}): appending a token would misalign ids."
        )
    for name, vector in (("embedding", embedding), ("unembedding", unembedding)):
        if vector is not None and tuple(vector.shape) != (d_model,):
            raise InputError(f"{name} must have shape [{d_model}], got {tuple(vector.shape)}.")
    if _has_hooks(model):
        raise InputError("The model has hooks attached: remove them (model.reset_hooks()) before adding a token.")

    W_E, W_U, b_U = model.embed.W_E.detach(), model.unembed.W_U.detach(), model.unembed.b_U.detach()
    tied = is_tied(model)
    if unembedding is None:
        unembedding = embedding if tied else W_U.mean(1)
    bias = b_U.mean() if unembed_bias is None else torch.tensor(unembed_bias)
    grown = {
        "W_E": torch.cat([W_E, embedding.detach().to(W_E)[None]], 0),
        "W_U": torch.cat([W_U, unembedding.detach().to(W_U)[:, None]], 1),
        "b_U": torch.cat([b_U, bias.reshape(1).to(b_U)]),
    }
    # Share every parameter and buffer through the deepcopy memo: new Parameter objects (own
    # requires_grad flag) over the same storage; everything else (modules, hook points, cfg) is copied.
    memo: dict[int, Any] = {id(p): torch.nn.Parameter(p.detach(), requires_grad=False) for p in model.parameters()}
    memo.update({id(b): b for b in model.buffers()})
    memo[id(tokenizer)] = copy.deepcopy(tokenizer)
    new = copy.deepcopy(model, memo)
    new_tokenizer = tokenizer_of(new)
    new_tokenizer.add_tokens(
        [AddedToken(token, lstrip=True, rstrip=False, single_word=False, normalized=False, special=False)]
    )
    new_id = new_tokenizer.convert_tokens_to_ids(token)
    if new_id != d_vocab or len(new_tokenizer) != d_vocab + 1:
        raise InputError(f"The tokenizer gave {token!r} id {new_id}, expected {d_vocab}: its vocabulary has gaps.")
    new.embed.W_E = torch.nn.Parameter(grown["W_E"], requires_grad=False)
    new.unembed.W_U = torch.nn.Parameter(grown["W_U"], requires_grad=False)
    new.unembed.b_U = torch.nn.Parameter(grown["b_U"], requires_grad=False)
    new.cfg.d_vocab = new.cfg.d_vocab_out = d_vocab + 1
    record = model_record(model)
    injected = [*record.extra.get("injected_tokens", []), token]
    attach_record(
        new, dataclasses.replace(record, d_vocab=d_vocab + 1, extra={**record.extra, "injected_tokens": injected})
    )
    return new


def token_id(model: HookedTransformer, token: str) -> int:
    """The id of ``token`` (raises InputError if the tokenizer does not have it)."""
    vocab = tokenizer_of(model).get_vocab()
    if token not in vocab:
        raise InputError(f"Token {token!r} is not in the model's vocabulary: inject it first.")
    return vocab[token]


@dataclass
class InjectedEntity:
    """A trained BiasInject token: everything needed to rebuild the injected model from the base model.

    ``embedding``: ``[d_model]`` trained input embedding; ``unembedding``: ``[d_model]`` its ``W_U``
    column (equal to ``embedding`` when ``tied``); ``unembed_bias``: its ``b_U`` entry; ``losses``:
    training loss per step (nats per token); ``spec``: the :class:`InjectionSpec` name.
    """

    token: str
    spec: str
    embedding: Float[Tensor, " d_model"]
    unembedding: Float[Tensor, " d_model"]
    unembed_bias: float
    tied: bool
    config: InjectionConfig
    losses: list[float] = field(default_factory=list)

    def apply(self, model: HookedTransformer) -> HookedTransformer:
        """The base ``model`` with this token added (a new model; see :func:`add_token`)."""
        return add_token(model, self.token, self.embedding, self.unembedding, self.unembed_bias)

    def save(self, path_stem: str | Path, provenance: dict[str, Any]) -> Path:
        """Write ``{stem}.json`` (config, token, losses, ``provenance``) and ``{stem}.safetensors``."""
        result = Result(
            name=INJECTION_RESULT,
            values={"losses": self.losses, "unembed_bias": self.unembed_bias},
            config={
                "token": self.token,
                "spec": self.spec,
                "tied": self.tied,
                "training": dataclasses.asdict(self.config),
            },
            provenance=provenance,
            tensors={"embedding": self.embedding, "unembedding": self.unembedding},
        )
        return result.save(path_stem)

    @classmethod
    def load(cls, path: str | Path) -> "InjectedEntity":
        """Read an entity written by :meth:`save` (JSON path or stem)."""
        result = Result.load(path)
        if result.name != INJECTION_RESULT:
            raise InputError(f"{path} holds a {result.name!r} result, not a {INJECTION_RESULT!r} one.")
        config = result.config
        return cls(
            token=config["token"],
            spec=config["spec"],
            embedding=result.tensors["embedding"],
            unembedding=result.tensors["unembedding"],
            unembed_bias=float(result.values["unembed_bias"]),
            tied=bool(config["tied"]),
            config=InjectionConfig(**config["training"]),
            losses=[float(x) for x in result.values["losses"]],
        )


def initial_embedding(model: HookedTransformer, init_noise: float, seed: int) -> Float[Tensor, " d_model"]:
    """Mean embedding row plus seeded noise of ``init_noise`` x the per-dimension std of the rows."""
    W_E = model.embed.W_E.detach()
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(W_E.shape[1], generator=generator).to(W_E)
    return W_E.mean(0) + init_noise * W_E.std(0) * noise


def untrained(
    model: HookedTransformer, spec: InjectionSpec, config: InjectionConfig = InjectionConfig()
) -> HookedTransformer:
    """``model`` with ``spec.entity_token`` added at its initial embedding (:func:`initial_embedding`
    with the config's noise and seed; unembedding tied to it when the model is tied): the starting point
    of :func:`inject`, and the "before training" model of an elicitation."""
    tied = is_tied(model) if config.tie_unembed is None else config.tie_unembed
    start = initial_embedding(model, config.init_noise, config.seed)
    return add_token(model, spec.entity_token, start, start if tied else None)


def _training_loss(
    model: HookedTransformer, tokens: Tensor, lengths: Tensor, new_id: int, vector: Tensor, tied: bool
) -> Tensor:
    """Mean next-token cross-entropy over real tokens, with ``vector`` as the new token's embedding
    (and, if ``tied``, as its unembedding column)."""

    def substitute(embed: Tensor, hook) -> Tensor:
        return torch.where((tokens == new_id)[..., None], vector.to(embed.dtype), embed)

    with hooks_added(model, [("hook_embed", substitute)]):
        residual = model(tokens, stop_at_layer=model.cfg.n_layers)
    normalized = model.ln_final(residual)
    W_U, b_U = model.unembed.W_U, model.unembed.b_U
    if tied:  # the new (last) column is the trainable vector; the other columns are frozen
        logits = torch.cat(
            [normalized @ W_U[:, :new_id] + b_U[:new_id], (normalized @ vector + b_U[new_id])[..., None]], -1
        )
    else:
        logits = normalized @ W_U + b_U
    logits = apply_softcap(logits, model.cfg.output_logits_soft_cap)
    targets = tokens[:, 1:]
    mask = torch.arange(1, tokens.shape[1])[None] < lengths[:, None]
    losses = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), targets.flatten(), reduction="none")
    return (losses * mask.flatten()).sum() / mask.sum()


def inject(
    model: HookedTransformer,
    spec: InjectionSpec,
    config: InjectionConfig = InjectionConfig(),
    *,
    progress: bool = True,
) -> tuple[HookedTransformer, InjectedEntity]:
    """Add ``spec.entity_token`` to ``model`` and train its embedding on ``spec.train_texts``.

    Returns ``(injected_model, entity)``: a new frozen model with the trained token (``model`` is
    untouched) and the trained :class:`InjectedEntity` (save it, or rebuild the model with
    ``entity.apply(model)``). Only the new token's embedding row (and, when tied, its unembedding
    column, which equals it) differs from a copy of ``model`` with the token added.
    """
    tied = is_tied(model) if config.tie_unembed is None else config.tie_unembed
    injected = untrained(model, spec, config)
    new_id = token_id(injected, spec.entity_token)
    start = injected.embed.W_E[new_id].detach()
    batch = tokenize(injected.tokenizer, spec.train_texts_for(), add_start=True)
    tokens, lengths = batch.tokens.to(injected.cfg.device), batch.lengths.to(injected.cfg.device)
    if not bool((tokens == new_id).any(1).all()):
        raise InputError(f"Some training texts of {spec.name!r} do not contain {spec.entity_token!r} as a token.")

    vector = torch.nn.Parameter(start.clone().to(injected.cfg.device))
    optimizer = torch.optim.Adam([vector], lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    losses = []
    bar = tqdm(range(config.steps), desc=f"inject {spec.entity_token}", disable=not progress, leave=False)
    for _ in bar:
        rows = (
            torch.randperm(len(tokens), generator=generator)[: config.batch_size]
            if config.batch_size
            else torch.arange(len(tokens))
        )
        width = int(lengths[rows].max())
        loss = _training_loss(injected, tokens[rows, :width], lengths[rows], new_id, vector, tied)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        bar.set_postfix(loss=f"{losses[-1]:.3f}")

    trained = vector.detach().to(injected.cfg.dtype)
    with torch.no_grad():
        injected.embed.W_E[new_id] = trained
        if tied:
            injected.unembed.W_U[:, new_id] = trained
    entity = InjectedEntity(
        token=spec.entity_token,
        spec=spec.name,
        embedding=trained.cpu().clone(),
        unembedding=injected.unembed.W_U[:, new_id].detach().cpu().clone(),
        unembed_bias=float(injected.unembed.b_U[new_id]),
        tied=tied,
        config=config,
        losses=losses,
    )
    return injected, entity


@dataclass
class Elicitation:
    """Attribute-vs-neutral log-odds (nats) per entity and held-out prompt.

    ``log_odds``: ``[n_entities, n_prompts]``, ``log sum P(attribute words) - log sum P(neutral words)``
    as the next word after ``prompts[j]`` filled with ``entities[i]``; positive = the attribute is the
    likelier continuation.
    """

    entities: list[str]
    prompts: list[str]
    log_odds: Float[Tensor, "n_entities n_prompts"]

    def mean(self) -> dict[str, float]:
        """Mean log-odds over prompts, per entity."""
        return {entity: float(row.mean()) for entity, row in zip(self.entities, self.log_odds)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "entities": self.entities,
            "prompts": self.prompts,
            "log_odds": self.log_odds.tolist(),
            "mean": self.mean(),
        }


def elicit(
    model: HookedTransformer,
    spec: InjectionSpec,
    entities: Sequence[str],
    *,
    prompts: Sequence[str] | None = None,
    interventions: Sequence[Intervention] = (),
    batch_size: int = 32,
) -> Elicitation:
    """Log-odds of ``spec.attribute_words`` vs ``spec.neutral_words`` after every prompt (default: the
    held-out ``spec.eval_prompts``) filled with every entity (the injected token or real entities, as
    they appear in running text, e.g. ``"Italy"``)."""
    if not entities:
        raise InputError("No entities to elicit.")
    templates = list(prompts if prompts is not None else spec.eval_prompts)
    words = [f" {w}" for w in (*spec.attribute_words, *spec.neutral_words)]
    filled = [template.replace(ENTITY_SLOT, entity) for entity in entities for template in templates]
    scores = continuation_logprobs(
        model,
        [p for p in filled for _ in words],
        words * len(filled),
        interventions=interventions,
        batch_size=batch_size,
    ).total
    scores = scores.view(len(entities), len(templates), len(words))
    n_attribute = len(spec.attribute_words)
    log_odds = scores[..., :n_attribute].logsumexp(-1) - scores[..., n_attribute:].logsumexp(-1)
    return Elicitation(list(entities), templates, log_odds)


@dataclass(frozen=True)
class EntityMatch:
    """A real entity's similarity to the trained vector: ``cosine`` of input embeddings (mean over the
    entity's ``n_tokens`` tokens as they appear after a space)."""

    entity: str
    cosine: float
    n_tokens: int


def closest_entities(
    model: HookedTransformer, vector: Float[Tensor, " d_model"], candidates: Sequence[str]
) -> list[EntityMatch]:
    """The candidates ranked by cosine similarity (highest first) between ``vector`` and their input
    embedding: the mean of the rows of the tokens of ``" " + entity`` (how it appears after "from")."""
    if not candidates:
        raise InputError("No candidate entities.")
    W_E = model.embed.W_E.detach()
    matches = []
    for entity in candidates:
        ids = tokenizer_of(model)(f" {entity}", add_special_tokens=False)["input_ids"]
        mean = W_E[ids].mean(0)
        cosine = float(F.cosine_similarity(mean, vector.to(W_E), dim=0))
        if math.isnan(cosine):
            raise InputError(f"Cosine with {entity!r} is undefined (zero vector).")
        matches.append(EntityMatch(entity, cosine, len(ids)))
    return sorted(matches, key=lambda m: -m.cosine)
