"""Weight matrices stored in the memory order TransformerLens's forward reads them in.

TransformerLens 3.x keeps ``W_in`` as ``[d_model, d_mlp]``, ``W_U`` as ``[d_model, d_vocab]``, ``W_Q`` as
``[head, d_model, d_head]`` ..., and on every forward turns each into the ``[out, in]`` matrix of ``F.linear`` with
``W.T.contiguous()`` (the MLP, the unembedding) or an ``einops.rearrange`` followed by a copy (the attention): a
copy of every weight matrix, the whole unembedding included (``[49,152 x 576]`` on SmolLM2), on every forward. On
short forwards (a KV-cached continuation of a few tokens) those copies cost more than the products: measured on
64 BBQ questions on 2 cores, ``aten::copy_`` of weights took 40% of the CPU time.

:func:`forward_layout` stores each of these parameters as a strided view of a buffer that already has the
``[out, in]`` order, so the transposes are views and the copies no-ops. Shapes and values are unchanged (every
hook, weight read and ``state_dict`` key is the same; the products run on the very matrices the copies would
have made, so outputs are identical bit for bit), only the strides differ.
"""

from __future__ import annotations

import torch
from transformer_lens import HookedTransformer

#: Attention inputs ``[head, d_model, d_head]``, read as ``(head d_head) d_model``.
HEAD_INPUTS = ("W_Q", "W_K", "W_V", "_W_K", "_W_V")
#: Matrices read as their transpose by ``F.linear``.
TRANSPOSED = ("W_in", "W_gate", "W_out", "W_U")


def _relaid(name: str, weight: torch.Tensor) -> torch.Tensor | None:
    """``weight`` (same shape and values) in the memory order of its forward, or None when nothing applies."""
    if name in HEAD_INPUTS and weight.dim() == 3:
        return weight.permute(0, 2, 1).contiguous().permute(0, 2, 1)
    if name == "W_O" and weight.dim() == 3:  # [head, d_head, d_model], read as d_model (head d_head)
        return weight.permute(2, 0, 1).contiguous().permute(1, 2, 0)
    if name in TRANSPOSED and weight.dim() == 2:
        return weight.T.contiguous().T
    return None


def forward_layout(model: HookedTransformer) -> HookedTransformer:
    """``model`` (changed in place and returned) with its weight matrices in forward order (module docstring)."""
    with torch.no_grad():
        for full_name, parameter in model.named_parameters():
            relaid = _relaid(full_name.rsplit(".", 1)[-1], parameter.data)
            if relaid is not None:
                parameter.data = relaid
    return model
