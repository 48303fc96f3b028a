"""The ``bf16_mixed`` precision: bf16 matrix products, an fp32 residual stream, fp32 norms and logits.

:func:`to_mixed_precision` turns an fp32 ``HookedTransformer`` into one whose blocks' weight matrices (the
attention's ``W_Q``, ``W_K``, ``W_V``, ``W_O`` and the MLP's ``W_in``, ``W_gate``, ``W_out``) are stored in bf16 and
whose forward runs under ``torch.autocast(dtype=torch.bfloat16)``: every matrix product of the blocks runs on the
CPU's bf16 units (AMX / AVX-512 bf16) or a GPU's tensor cores, while the embedding, the residual stream (each
block's output is added to the fp32 stream), the norms and the unembedding (weights, logits, hence every
log-softmax) stay fp32. ``cfg.dtype`` stays float32, so every hook on the residual stream sees fp32 and the
interventions' vectors are fp32; hooks inside a block (``hook_z``, ``hook_attn_scores``, ``hook_mlp_out``, ...)
see bf16 tensors. Measured agreement with fp32 and speed: README "Which dtype".
"""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens import HookedTransformer
from transformer_lens.components import Unembed

from lens_bias.errors import InputError

#: The name of the mode (a ``--dtype`` choice, the model record's ``dtype``).
MIXED = "bf16_mixed"

#: The blocks' weight matrices stored in bf16 (last component of the parameter name).
BF16_MATRICES = ("W_Q", "W_K", "W_V", "W_O", "_W_K", "_W_V", "W_in", "W_gate", "W_out")


def _device_type(model: HookedTransformer) -> str:
    return torch.device(model.cfg.device or "cpu").type


class MixedPrecisionTransformer(HookedTransformer):
    """A ``HookedTransformer`` whose forward runs under bf16 autocast (made by :func:`to_mixed_precision`)."""

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        with torch.autocast(_device_type(self), dtype=torch.bfloat16):
            return super().forward(*args, **kwargs)


class FloatUnembed(Unembed):
    """The unembedding in fp32 inside an autocast forward: logits ``[batch, pos, d_vocab]`` in fp32."""

    def forward(self, residual: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_vocab_out"]:
        with torch.autocast(residual.device.type, enabled=False):
            return super().forward(residual.float())


def to_mixed_precision(model: HookedTransformer) -> HookedTransformer:
    """``model`` (fp32, changed in place and returned) in the ``bf16_mixed`` precision (module docstring)."""
    if type(model) is not HookedTransformer or model.cfg.dtype != torch.float32:
        raise InputError(
            f"{MIXED} applies to an fp32 HookedTransformer; got a {type(model).__name__} in {model.cfg.dtype}."
        )
    for block in model.blocks:
        for name, parameter in block.named_parameters():
            if name.rsplit(".", 1)[-1] in BF16_MATRICES:
                parameter.data = parameter.data.to(torch.bfloat16)
    model.__class__ = MixedPrecisionTransformer
    model.unembed.__class__ = FloatUnembed
    return model
