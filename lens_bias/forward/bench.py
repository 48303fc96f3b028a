"""Benchmark of batched extraction: the same prompts read batched, one prompt at a time and by TransformerLens's
``run_with_cache`` (every hook cached), with wall times, the largest differences between the three, and the
process's resident memory over repeated extractions (a long sweep must not grow memory)."""

from __future__ import annotations

import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from lens_bias.forward import activations
from lens_bias.forward.hooks import residual_hook_name
from lens_bias.models import AnyModel
from lens_bias.prompts import PromptBatch


def rss_mb() -> float:
    """Current resident set size in MB (Linux /proc)."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


@dataclass(frozen=True)
class ExtractionBench:
    """Wall times (s) of the three ways over the same prompts, ``max |batched - single|`` and ``max |batched -
    run_with_cache|`` (residual units), resident memory (MB) after each repeated batched extraction, and the size
    (MB) and shape ``[n_prompts, n_layers, d_model]`` of the result."""

    batched_s: float
    single_s: float
    cache_s: float
    max_diff_single: float
    max_diff_cache: float
    rss_mb: list[float]
    result_mb: float
    shape: tuple[int, ...]


def bench_extraction(
    model: AnyModel, batch: PromptBatch, layers: Sequence[int], *, batch_size: int, repeats: int
) -> ExtractionBench:
    """The residual stream at ``layers`` (last token of each prompt of ``batch``) read the three ways, after one
    warm-up forward; then ``repeats`` batched extractions, reading the resident memory after each."""
    layers = list(layers)
    extract = activations.extract  # looked up at call time (tests patch it)
    extract(model, batch[0:2], layers)  # warm-up
    start = time.perf_counter()
    batched = extract(model, batch, layers, batch_size=batch_size)
    batched_s = time.perf_counter() - start

    start = time.perf_counter()
    single = torch.cat([extract(model, batch[i : i + 1], layers) for i in range(len(batch))])
    single_s = time.perf_counter() - start

    names = [residual_hook_name(layer) for layer in layers]
    start = time.perf_counter()
    rows = []
    for i in range(len(batch)):
        with torch.inference_mode():
            _, cache = model.run_with_cache(batch.tokens[i : i + 1, : batch.lengths[i]])
        rows.append(torch.stack([cache[name][0, -1] for name in names]))
        del cache
    cached = torch.stack(rows)
    cache_s = time.perf_counter() - start

    readings = []
    for _ in range(repeats):
        extract(model, batch, layers, batch_size=batch_size)
        readings.append(rss_mb())
    return ExtractionBench(
        batched_s,
        single_s,
        cache_s,
        float((batched - single).abs().max()),
        float((batched - cached).abs().max()),
        readings,
        batched.numel() * batched.element_size() / 2**20,
        tuple(batched.shape),
    )
