"""Direct logit attribution: each head's and MLP layer's direct contribution to a logit difference of token
sets at the last token, through the final RMSNorm scale of the run.

Each head's output at the last position, ``z @ W_O``, is projected on ``w_ln * (mean W_U[:, positive] -
mean W_U[:, negative])`` and divided by the final RMSNorm scale of *its own run* (``ln_final.hook_scale``,
frozen, as in the standard linearisation); likewise each MLP layer's output, the attention biases and
the embedding. With the unembedding bias these terms sum to the metric
(:func:`lens_bias.patching.set_logit_diff_metric`) exactly (tested): the *direct* path only, no
effects through later layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens import HookedTransformer

from lens_bias.errors import InputError
from lens_bias.interventions import run_chunks
from lens_bias.patching import set_logit_diff_metric
from lens_bias.prompts import PromptBatch


@dataclass
class DirectAttribution:
    """Direct contributions (logits) to the metric at the last token of each row of one run.

    ``heads``: ``[n, n_layers, n_heads]``; ``mlp``: ``[n, n_layers]``; ``attn_bias``: ``[n, n_layers]``
    (``b_O``); ``embed``: ``[n]``; ``unembed_bias``: the metric's ``b_U`` part (same for every row);
    ``metric``: ``[n]`` the metric from the run's logits. ``heads.sum + mlp.sum + attn_bias.sum + embed +
    unembed_bias == metric`` up to float error.
    """

    heads: Float[Tensor, "n n_layers n_heads"]
    mlp: Float[Tensor, "n n_layers"]
    attn_bias: Float[Tensor, "n n_layers"]
    embed: Float[Tensor, " n"]
    unembed_bias: float
    metric: Float[Tensor, " n"]

    def total(self) -> Float[Tensor, " n"]:
        """Sum of all direct contributions (equals ``metric``)."""
        return self.heads.sum((1, 2)) + self.mlp.sum(1) + self.attn_bias.sum(1) + self.embed + self.unembed_bias


def direct_attribution(
    model: HookedTransformer, batch: PromptBatch, positive_ids: Tensor, negative_ids: Tensor, *, batch_size: int = 64
) -> DirectAttribution:
    """Direct logit attribution of ``mean logit[positive_ids] - mean logit[negative_ids]`` at each row's
    last token, through the final RMSNorm scale of the run (see the module docstring).

    Raises InputError for models whose final norm is not RMSNorm (the Llama family is supported)."""
    if model.cfg.normalization_type not in ("RMS", "RMSPre"):
        raise InputError(
            f"Direct attribution here needs a final RMSNorm; {model.cfg.model_name} has "
            f"{model.cfg.normalization_type!r}."
        )
    n_layers = model.cfg.n_layers
    W_U, b_U = model.unembed.W_U.detach(), model.unembed.b_U.detach()
    w_ln = getattr(model.ln_final, "w", None)
    direction = W_U[:, positive_ids].mean(1) - W_U[:, negative_ids].mean(1)
    direction = direction * (w_ln.detach() if w_ln is not None else 1.0)  # [d_model]
    W_O = torch.stack([block.attn.W_O.detach() for block in model.blocks])  # [layers, heads, d_head, d_model]
    head_dir = torch.einsum("lhdm,m->lhd", W_O, direction)  # [layers, heads, d_head]
    b_O = torch.stack([block.attn.b_O.detach() for block in model.blocks]) @ direction  # [layers]
    metric = set_logit_diff_metric(positive_ids, negative_ids)
    names = (
        ["hook_embed", "ln_final.hook_scale"]
        + [f"blocks.{l}.attn.hook_z" for l in range(n_layers)]
        + [f"blocks.{l}.hook_mlp_out" for l in range(n_layers)]
    )
    read: dict[str, Tensor] = {}  # hook name -> [chunk, ...] at the last token, for the current chunk
    out: dict[str, list[Tensor]] = {"heads": [], "mlp": [], "embed": [], "scale": [], "metric": []}

    def hooks_for(chunk: PromptBatch):
        rows, last = torch.arange(len(chunk), device=chunk.tokens.device), chunk.positions["last"]

        def store(activation: Tensor, hook) -> None:
            read[hook.name] = activation[rows, last].float()

        return [(name, store) for name in names]

    for chunk, logits in run_chunks(model, batch, batch_size=batch_size, extra_hooks=hooks_for):
        out["metric"].append(metric(logits, chunk).cpu())
        out["embed"].append(read["hook_embed"])
        out["scale"].append(read["ln_final.hook_scale"])
        out["heads"].append(torch.stack([read[f"blocks.{l}.attn.hook_z"] for l in range(n_layers)], 1))
        out["mlp"].append(torch.stack([read[f"blocks.{l}.hook_mlp_out"] for l in range(n_layers)], 1))
    scale = torch.cat(out["scale"])  # [n, 1]
    z = torch.cat(out["heads"])  # [n, layers, heads, d_head]
    return DirectAttribution(
        heads=(torch.einsum("nlhd,lhd->nlh", z, head_dir.float()) / scale[:, :, None]).cpu(),
        mlp=((torch.cat(out["mlp"]) @ direction.float()) / scale).cpu(),
        attn_bias=(b_O.float()[None] / scale).cpu(),
        embed=((torch.cat(out["embed"]) @ direction.float()) / scale[:, 0]).cpu(),
        unembed_bias=float(b_U[positive_ids].mean() - b_U[negative_ids].mean()),
        metric=torch.cat(out["metric"]),
    )
