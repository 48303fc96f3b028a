"""An independent reference for steering vectors: the HF model with plain PyTorch forward hooks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from lens_bias.data.records import ContrastPair
from lens_bias.prompts import continuation_batch


def hf_last_token_mean_difference(hf: Any, tokenizer: Any, pairs: Sequence[ContrastPair], layer: int) -> torch.Tensor:
    """``[d_model]``: mean over pairs of the output of HF decoder layer ``layer`` at the last token of
    ``prompt + positive`` minus that of ``prompt + negative``, one unpadded forward per side."""
    captured = {}
    handle = hf.model.layers[layer].register_forward_hook(
        lambda module, inputs, output: captured.__setitem__("h", output[0] if isinstance(output, tuple) else output)
    )
    diffs = []
    try:
        for pair in pairs:
            sides = []
            for text in (pair.positive, pair.negative):
                with torch.inference_mode():
                    hf(continuation_batch(tokenizer, [pair.prompt], [text]).tokens)
                sides.append(captured["h"][0, -1])
            diffs.append(sides[0] - sides[1])
    finally:
        handle.remove()
    return torch.stack(diffs).mean(0)
