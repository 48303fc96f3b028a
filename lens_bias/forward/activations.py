"""Batched extraction of exactly the activations asked for: hook points x layers at chosen positions.

Nothing but the requested rows is kept: each hook copies ``[chunk, d_model]`` (or a masked mean over
positions) out of the forward and the forward stops after the deepest requested layer, so memory grows
with ``n_items x n_layers x d_model``, never with sequence length x every hook (no ``ActivationCache``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from jaxtyping import Float
from torch import Tensor

from lens_bias.errors import InputError
from lens_bias.forward.hooks import Intervention, ResidHook, residual_hook_name, run_chunks
from lens_bias.models import AnyModel, check_layers
from lens_bias.prompts import PromptBatch


def extract(
    model: AnyModel,
    batch: PromptBatch,
    layers: int | Sequence[int],
    *,
    position: str = "last",
    mean_from: str | None = None,
    hook: ResidHook = "resid_post",
    interventions: Sequence[Intervention] = (),
    batch_size: int = 16,
    progress: bool | str = False,
) -> Float[Tensor, "n_items n_layers d_model"]:
    """Residual-stream activations of every row of ``batch`` at ``layers``.

    Args:
        position: name of a position in ``batch.positions`` (``"last"`` = last real token, never a pad;
            ``"answer"``, ``"instruction_end"``, ...) whose activation is read.
        mean_from: if given, the name of a start position; the activation is then the mean over the
            tokens from that position to ``position`` inclusive (e.g. the tokens of a continuation).
        hook: ``resid_pre`` (input of block L), ``resid_mid`` or ``resid_post`` (output of block L).

    Returns ``[n_items, n_layers, d_model]`` in the model's dtype on CPU, rows in batch order.
    """
    layers = check_layers(model, layers)
    for name in (position, mean_from):
        if name is not None and name not in batch.positions:
            raise InputError(f"Position {name!r} is not in the batch (has {sorted(batch.positions)}).")
    names = [residual_hook_name(layer, hook) for layer in layers]
    out: list[Tensor] = []

    def hooks_for(chunk: PromptBatch):
        rows = torch.arange(len(chunk), device=chunk.tokens.device)
        end = chunk.positions[position]
        store = torch.empty(len(chunk), len(layers), model.cfg.d_model, dtype=model.cfg.dtype)
        out.append(store)
        if mean_from is not None:
            start = chunk.positions[mean_from]
            index = torch.arange(chunk.tokens.shape[1], device=end.device)
            mask = ((index[None] >= start[:, None]) & (index[None] <= end[:, None])).to(model.cfg.dtype)
            if bool((mask.sum(1) == 0).any()):
                raise InputError(f"Some rows have {mean_from!r} after {position!r}: nothing to average.")

        def make(j: int):
            def read(activation: Tensor, hook) -> None:
                if mean_from is None:
                    store[:, j] = activation[rows, end].cpu()
                else:
                    summed = torch.einsum("bp,bpd->bd", mask, activation)
                    store[:, j] = (summed / mask.sum(1, keepdim=True)).cpu()

            return read

        return [(name, make(j)) for j, name in enumerate(names)]

    for _ in run_chunks(
        model,
        batch,
        interventions=interventions,
        batch_size=batch_size,
        extra_hooks=hooks_for,
        stop_at_layer=max(layers) + 1,
        progress=progress,
    ):
        pass
    return torch.cat(out)
