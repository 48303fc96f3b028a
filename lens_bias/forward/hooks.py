"""The intervention protocol and the hook context that applies interventions and removes exactly their hooks.

Also the residual-stream hook names (:func:`residual_hook_name`) and chunked forwards under interventions
(:func:`run_chunks`).

An :class:`Intervention` checks that it fits a model (``check``: widths, layers, heads) and turns a
:class:`ForwardContext` (which batch is running, and at which absolute position its first token sits: 0 for
a full forward, the number of cached tokens during KV-cached generation) into TransformerLens forward hooks.
:func:`applied` adds those hooks and, on exit, removes exactly those hooks: hooks the user had attached
before stay attached, also after an exception (TransformerLens's own ``hooks()`` context resets *all*
non-permanent hooks on exit).

Readouts and extraction take ``interventions=`` and run inside :func:`applied`, so "measure X under
steering" or "after ablation" is a readout run with an intervention, nothing more.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from lens_bias.errors import InputError
from lens_bias.models import AnyModel
from lens_bias.prompts import PromptBatch

HookFn = Callable[..., Any]
ResidHook = Literal["resid_pre", "resid_mid", "resid_post"]


def residual_hook_name(layer: int, hook: ResidHook = "resid_post") -> str:
    """``blocks.{layer}.hook_{hook}``: names that are stable across HookedTransformer and
    TransformerBridge compatibility mode."""
    return f"blocks.{layer}.hook_{hook}"


@dataclass
class ForwardContext:
    """What a hook needs to know about the forward pass it runs in.

    ``batch``: the prompts of this forward (their positions, e.g. ``instruction_end``).
    ``offset``: absolute position of index 0 of the activations the hooks see (0 for a full forward;
    the number of tokens already in the KV cache during cached generation).
    """

    batch: PromptBatch
    offset: int = 0


class Intervention(Protocol):
    """Anything that can be applied to a model as forward hooks and removed cleanly."""

    def hooks(self, model: AnyModel, context: ForwardContext) -> list[tuple[str, HookFn]]:
        """(hook name, hook function) pairs; functions may read ``context`` at call time."""
        ...

    def describe(self) -> dict[str, Any]:
        """A JSON-able description for provenance."""
        ...

    def check(self, model: AnyModel) -> None:
        """Raise :class:`lens_bias.errors.InputError` if the intervention does not fit ``model`` (a vector's
        width is not the model's ``d_model``, a layer or head outside the model, ...), before any forward."""
        ...


def check_hook_names(model: AnyModel, names: Sequence[str]) -> None:
    """Raise a clear error for hook names the model does not have."""
    unknown = [name for name in names if name not in model.hook_dict]
    if unknown:
        raise InputError(
            f"Unknown hook point(s) {unknown}: the model has e.g. "
            f"'blocks.0.hook_resid_pre' .. 'blocks.{model.cfg.n_layers - 1}.hook_resid_post', "
            "'blocks.{l}.attn.hook_z', 'blocks.{l}.hook_attn_out', 'blocks.{l}.hook_mlp_out'."
        )


@contextmanager
def hooks_added(model: AnyModel, fwd_hooks: Sequence[tuple[str, HookFn]]) -> Iterator[None]:
    """Attach ``fwd_hooks`` for the duration of the block; afterwards exactly these are removed."""
    check_hook_names(model, [name for name, _ in fwd_hooks])
    added = []
    try:
        for name, fn in fwd_hooks:
            hook_point = model.hook_dict[name]
            hook_point.add_hook(fn, dir="fwd")
            added.append((hook_point, hook_point.fwd_hooks[-1]))
        yield
    finally:
        for hook_point, handle in reversed(added):
            handle.hook.remove()
            hook_point.fwd_hooks.remove(handle)


def check_interventions(model: AnyModel, interventions: Sequence[Intervention]) -> None:
    """Check every intervention against ``model`` (:meth:`Intervention.check`): call it before expensive work
    that runs them later (e.g. a baseline); :func:`applied` calls it before adding any hook."""
    for intervention in interventions:
        intervention.check(model)


@contextmanager
def applied(
    model: AnyModel, interventions: Sequence[Intervention], context: ForwardContext
) -> Iterator[ForwardContext]:
    """Apply ``interventions`` for forwards run with ``context`` (mutate ``context.batch`` /
    ``context.offset`` between forwards inside the block; the hooks read them at call time). Every
    intervention is checked against the model first (:func:`check_interventions`)."""
    check_interventions(model, interventions)
    fwd_hooks = [hook for intervention in interventions for hook in intervention.hooks(model, context)]
    with hooks_added(model, fwd_hooks):
        yield context


class Hookable:
    """TransformerLens idioms for an intervention (the built-in ones inherit them)::

        with AddVector(vector, 4, [8], start=None).applied(model):
            logits = model(tokens)                     # steered; the hooks are gone after the block
        model.run_with_hooks(tokens, fwd_hooks=AddVector(vector, 4, [8], start=None).fwd_hooks(model))

    Both act at every position of whatever the model runs; an intervention that starts at a named position
    (``start="instruction_end"``) needs the :class:`lens_bias.prompts.PromptBatch` of that forward (``batch``),
    else its hook raises an error that says so."""

    def hooks(self, model: AnyModel, context: ForwardContext) -> list[tuple[str, HookFn]]:
        raise NotImplementedError

    def check(self, model: AnyModel) -> None:
        raise NotImplementedError

    def fwd_hooks(self, model: AnyModel, batch: PromptBatch | None = None) -> list[tuple[str, HookFn]]:
        """``(hook name, function)`` pairs for ``model.run_with_hooks(tokens, fwd_hooks=...)`` or
        ``model.hooks(fwd_hooks=...)``, checked against ``model`` first."""
        self.check(model)
        return self.hooks(model, ForwardContext(batch if batch is not None else _no_batch()))

    @contextmanager
    def applied(self, model: AnyModel, batch: PromptBatch | None = None) -> Iterator[None]:
        """Every forward of ``model`` inside the block runs under this intervention; on exit exactly its hooks
        are removed (hooks attached before stay, also after an exception)."""
        with hooks_added(model, self.fwd_hooks(model, batch)):
            yield


def _no_batch() -> PromptBatch:
    """A batch with no rows and no named positions (what :meth:`Hookable.fwd_hooks` runs without one)."""
    import torch

    return PromptBatch(torch.zeros(0, 0, dtype=torch.long), torch.zeros(0, dtype=torch.long), {}, [])


def describe_all(interventions: Sequence[Intervention]) -> list[dict[str, Any]]:
    """Provenance of a list of interventions."""
    return [intervention.describe() for intervention in interventions]


def check_context(model: AnyModel, width: int) -> None:
    """An InputError unless rows of ``width`` tokens fit the model's context (checked before any forward)."""
    if width > model.cfg.n_ctx:
        raise InputError(
            f"The longest prompt has {width} tokens, more than the model's context of "
            f"{model.cfg.n_ctx}: shorten or drop the long items (or use a model with a longer context)."
        )


def run_chunks(
    model: AnyModel,
    batch: PromptBatch,
    *,
    interventions: Sequence[Intervention] = (),
    batch_size: int = 16,
    extra_hooks: Callable[[PromptBatch], list[tuple[str, HookFn]]] | None = None,
    stop_at_layer: int | None = None,
    progress: bool | str = False,
) -> Iterator[tuple[PromptBatch, Any]]:
    """Forward ``batch`` in chunks of ``batch_size`` rows under ``interventions``, yielding
    ``(chunk, output)``: output is ``[chunk, pos, d_vocab]`` logits, or the residual stream at
    ``stop_at_layer`` when given. ``extra_hooks(chunk)`` adds per-chunk hooks (e.g. to read
    activations). Runs under ``torch.inference_mode``; the model's own hooks stay untouched."""
    import torch
    from tqdm.auto import tqdm

    check_context(model, batch.tokens.shape[1])
    chunks = list(batch.chunks(batch_size))
    desc = progress if isinstance(progress, str) else "forward"
    device = model.cfg.device
    for chunk in tqdm(chunks, desc=desc, disable=not progress, leave=False):
        chunk = chunk.to(device)
        context = ForwardContext(chunk)
        with (
            applied(model, interventions, context),
            hooks_added(model, extra_hooks(chunk) if extra_hooks else []),
            torch.inference_mode(),
        ):
            yield chunk, model(chunk.tokens, stop_at_layer=stop_at_layer)
