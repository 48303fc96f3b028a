"""Shared by the patching tests: random clean/corrupted pairs, the reference metric, and
TransformerLens's own patching functions to compare against."""

from __future__ import annotations

from functools import partial

import torch
import transformer_lens.patching as tl

from lens_bias.interventions import hooks_added
from lens_bias.patching import TARGETS, logit_diff_metric
from lens_bias.prompts import PromptBatch

ATOL = 1e-4
TL_FUNCTIONS = {
    "resid_pre": tl.get_act_patch_resid_pre,
    "resid_mid": tl.get_act_patch_resid_mid,
    "resid_post": partial(
        tl.generic_activation_patch,
        patch_setter=tl.layer_pos_patch_setter,
        activation_name="resid_post",
        index_axis_names=("layer", "pos"),
    ),
    "attn_out": tl.get_act_patch_attn_out,
    "mlp_out": tl.get_act_patch_mlp_out,
    "z": tl.get_act_patch_attn_head_out_all_pos,
    "z_pos": tl.get_act_patch_attn_head_out_by_pos,
    "k": tl.get_act_patch_attn_head_k_all_pos,
    "v": tl.get_act_patch_attn_head_v_all_pos,
    "k_pos": tl.get_act_patch_attn_head_k_by_pos,
    "v_pos": tl.get_act_patch_attn_head_v_by_pos,
}


def make_pairs(
    lengths: list[int], swap_at: list[int], seed: int = 0, pad_id: int = 2
) -> tuple[PromptBatch, PromptBatch]:
    """Random right-padded clean batches and corrupted copies with one token changed per pair."""
    generator = torch.Generator().manual_seed(seed)
    width = max(lengths)
    clean = torch.full((len(lengths), width), pad_id)
    for i, length in enumerate(lengths):
        clean[i, :length] = torch.randint(3, 200, (length,), generator=generator)
    corrupted = clean.clone()
    for i, position in enumerate(swap_at):
        corrupted[i, position] = 3 + (int(clean[i, position]) + 17) % 197
    lengths_t = torch.tensor(lengths)

    def batch(tokens: torch.Tensor) -> PromptBatch:
        return PromptBatch(tokens, lengths_t, {"last": lengths_t - 1}, [f"pair {i}" for i in range(len(lengths))])

    return batch(clean), batch(corrupted)


METRIC = logit_diff_metric([5, 6], [7, 8])


def tl_patching_mean(model, target: str, clean: PromptBatch, corrupted: PromptBatch, direction: str = "denoising"):
    """TransformerLens's own sweep over the whole batch, metric averaged over the pairs."""
    base, source = (corrupted, clean) if direction == "denoising" else (clean, corrupted)
    _, source_cache = model.run_with_cache(source.tokens)
    return TL_FUNCTIONS[target](model, base.tokens, source_cache, lambda logits: METRIC(logits, base).mean())


def reference_patch(model, target: str, clean: PromptBatch, corrupted: PromptBatch) -> torch.Tensor:
    """Plain reference (denoising, raw metric): one configuration per full forward, nothing cached but the
    clean activation; ``[n_pairs, n_layers, *configuration axes]``."""
    spec = TARGETS[target]
    out = []
    for layer in range(model.cfg.n_layers):
        name = f"blocks.{layer}.{spec.hook}"
        _, cache = model.run_with_cache(clean.tokens, names_filter=name)
        source = cache[name]
        heads, width = source.shape[2] if source.ndim == 4 else 1, source.shape[1]
        index = {
            "pos": [(p,) for p in range(width)],
            "head": [(h,) for h in range(heads)],
            "head_pos": [(p, h) for p in range(width) for h in range(heads)],
        }[spec.unit]
        values = []
        for config in index:

            def hook(activation, hook, config=config, source=source):
                activation = activation.clone()
                index = (slice(None), slice(None), config[0]) if spec.unit == "head" else (slice(None), *config)
                activation[index] = source[index]
                return activation

            with hooks_added(model, [(name, hook)]), torch.inference_mode():
                values.append(METRIC(model(corrupted.tokens), corrupted))
        shape = (width, heads) if spec.unit == "head_pos" else (len(index),)
        out.append(torch.stack(values, 1).reshape(len(clean), *shape))
    return torch.stack(out, 1)
