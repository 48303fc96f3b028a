"""Timing and memory of a patching sweep: lens_bias.patching against transformer_lens.patching on the same
pair, model and threads, each sweep in a fresh process (:func:`bench_target`), and a flat-memory check of
repeated sweeps (:func:`flat_memory`); their one-line summaries (:func:`sweep_line`, :func:`memory_line`).
Linux: memory is read from ``/proc/self/status``.

Timings: wall clock and process CPU time (all threads); peak memory: the rise of ``VmHWM`` (reset through
``/proc/self/clear_refs``) above ``VmRSS`` at the start of the sweep.
"""

from __future__ import annotations

import gc
import multiprocessing
import re
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformer_lens.patching as tl_patching
from transformer_lens import HookedTransformer

from lens_bias.data.gender_swap import gender_swap_pairs
from lens_bias.models import load_model
from lens_bias.patching.attribution import agreement, attribution_patch
from lens_bias.patching.exact import patch
from lens_bias.patching.inputs import PatchingInputs, patching_inputs
from lens_bias.patching.metrics import Metric

SWEEPS = {  # lens_bias target -> (TransformerLens patch setter, activation name, index axes)
    "resid_pre": (tl_patching.layer_pos_patch_setter, "resid_pre", ("layer", "pos")),
    "z": (tl_patching.layer_head_vector_patch_setter, "z", ("layer", "head")),
}
TL_FUNCTIONS = {"resid_pre": "get_act_patch_resid_pre", "z": "get_act_patch_attn_head_out_all_pos"}
#: What the result's config records of the measurements.
DEFINITIONS = {
    "metric": "logit(' she') - logit(' he'), raw (nats)",
    "timing": "wall clock and process CPU time of one sweep each, each in a fresh process after "
    "loading and one warm-up forward; TransformerLens includes the run_with_cache it needs",
    "peak_memory": "VmHWM (reset via /proc/self/clear_refs) minus VmRSS at the start of the "
    "sweep; None where unavailable",
}
BENCH_GROUP = "trait-t2"  # "My new coworker is quite {trait}; I think" -> " she" / " he"


def swept_layers(n_model_layers: int, n_layers: int | None) -> list[int]:
    """``n_layers`` evenly spaced layers from the first to the last (rounded; every layer when None)."""
    if n_layers is None or n_layers >= n_model_layers:
        return list(range(n_model_layers))
    if n_layers == 1:
        return [0]
    return sorted({round(i * (n_model_layers - 1) / (n_layers - 1)) for i in range(n_layers)})


def _status_kb(field: str) -> int | None:
    try:
        match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def _reset_peak() -> bool:
    """Reset the process's peak resident memory (Linux >= 4.0); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def measure(run: Callable[[], Any]) -> tuple[Any, float, float, float | None]:
    """(result, wall seconds, CPU seconds of this process (all threads), rise of the peak resident memory
    above the resident memory at the start in MB, or None where the peak cannot be reset or read)."""
    gc.collect()
    before = _status_kb("VmRSS")
    resettable = _reset_peak()
    start, start_cpu = time.perf_counter(), time.process_time()
    result = run()
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
    peak = _status_kb("VmHWM")
    rise = (peak - before) / 1024 if resettable and peak is not None and before is not None else None
    return result, seconds, cpu_seconds, rise


def tl_sweep(model, target: str, clean_tokens, corrupted_tokens, tl_metric, layers: list[int]) -> torch.Tensor:
    """TransformerLens's own patching over ``layers``: ``get_act_patch_*`` when every layer is swept,
    else ``generic_activation_patch`` with the same setter restricted to those layers. Includes the
    clean ``run_with_cache`` it needs."""
    _, clean_cache = model.run_with_cache(clean_tokens)
    if layers == list(range(model.cfg.n_layers)):
        return getattr(tl_patching, TL_FUNCTIONS[target])(model, corrupted_tokens, clean_cache, tl_metric)
    setter, name, axes = SWEEPS[target]
    second = corrupted_tokens.shape[1] if axes[1] == "pos" else model.cfg.n_heads
    index = tl_patching.make_df_from_ranges([model.cfg.n_layers, second], list(axes))
    index = index[index["layer"].isin(layers)].reset_index(drop=True)
    flat = tl_patching.generic_activation_patch(
        model, corrupted_tokens, clean_cache, tl_metric, setter, name, index_df=index
    )
    return flat.reshape(len(layers), second)


def bench_inputs(model: HookedTransformer) -> tuple[PatchingInputs, Metric]:
    """The benchmark pair (the first usable pair of BENCH_GROUP), tokenized, and its metric."""
    inputs = patching_inputs(model.tokenizer, gender_swap_pairs(groups=[BENCH_GROUP]))
    one = patching_inputs(model.tokenizer, inputs.pairs[:1])
    return one, one.metric()


def run_sweep(
    model_name: str, threads: int | None, library: str, target: str, layers: list[int], batch_size: int
) -> dict[str, Any]:
    """One measured sweep in a fresh process, so that memory an earlier sweep freed to the allocator cannot
    hide this one's peak: load, warm up, run, report (scores as lists: no shared-memory tensors)."""
    if threads:
        torch.set_num_threads(threads)
    model = load_model(model_name, device="cpu")
    one, metric = bench_inputs(model)
    with torch.inference_mode():
        model(one.clean.tokens)  # warm-up, outside the measurement
    if library == "lens_bias":
        result, seconds, cpu, rise = measure(
            lambda: patch(
                model,
                one.clean,
                one.corrupted,
                metric,
                target=target,
                layers=layers,
                batch_size=batch_size,
                normalize=False,
            )
        )
        return {
            "scores": result.scores[0].tolist(),
            "seconds": seconds,
            "cpu_seconds": cpu,
            "peak_rise_mb": rise,
            "forwards": result.config["n_forwards"],
            "configs_run": result.config["n_configs_run"],
            "configs": result.config["n_configs"],
        }

    def tl_metric(logits: torch.Tensor) -> torch.Tensor:  # TransformerLens metrics return a scalar
        return metric(logits, one.corrupted).mean()

    scores, seconds, cpu, rise = measure(
        lambda: tl_sweep(model, target, one.clean.tokens, one.corrupted.tokens, tl_metric, layers)
    )
    return {"scores": scores.cpu().tolist(), "seconds": seconds, "cpu_seconds": cpu, "peak_rise_mb": rise}


def _rss_mb() -> float:
    rss = _status_kb("VmRSS")
    if rss is None:
        raise RuntimeError("The flat-memory check reads /proc/self/status (Linux).")
    return rss / 1024


def bench_target(
    model: HookedTransformer, model_name: str, target: str, layers: list[int], *, batch_size: int = 64
) -> dict[str, Any]:
    """One sweep of ``target`` over ``layers`` by both libraries, each in a fresh process (:func:`run_sweep`,
    ``model_name`` loaded there with this process's torch threads), compared; then lens_bias's attribution
    patching timed in this process on ``model`` and its agreement with the exact sweep."""
    measured = {}
    context = multiprocessing.get_context("spawn")
    for library in ("lens_bias", "transformer_lens"):
        with context.Pool(1) as pool:
            measured[library] = pool.apply(
                run_sweep, (model_name, torch.get_num_threads(), library, target, layers, batch_size)
            )
    ours, theirs = measured["lens_bias"], measured["transformer_lens"]
    ours_scores, theirs_scores = torch.tensor(ours["scores"]), torch.tensor(theirs["scores"])
    entry = {
        "transformer_lens_function": TL_FUNCTIONS[target],
        "shape": list(ours_scores.shape),
        "lens_bias_s": ours["seconds"],
        "transformer_lens_s": theirs["seconds"],
        "speedup": theirs["seconds"] / ours["seconds"],
        "lens_bias_cpu_s": ours["cpu_seconds"],
        "transformer_lens_cpu_s": theirs["cpu_seconds"],
        "cpu_speedup": theirs["cpu_seconds"] / ours["cpu_seconds"],
        "max_abs_difference": float((ours_scores - theirs_scores).abs().max()),
        "lens_bias_peak_rss_rise_mb": ours["peak_rise_mb"],
        "transformer_lens_peak_rss_rise_mb": theirs["peak_rise_mb"],
        "lens_bias_forwards": ours["forwards"],
        "lens_bias_configs_run": ours["configs_run"],
        "configs": ours["configs"],
    }
    one, metric = bench_inputs(model)
    exact = patch(model, one.clean, one.corrupted, metric, target=target, layers=layers, batch_size=batch_size)
    approx, approx_s, _, _ = measure(
        partial(attribution_patch, model, one.clean, one.corrupted, metric, target=target, layers=layers)
    )
    entry["attribution"] = {"seconds": approx_s, **agreement(exact, approx, k=10)}
    return entry


def flat_memory(
    model: HookedTransformer, layers: Sequence[int], *, iterations: int, batch_size: int = 64
) -> dict[str, Any]:
    """The resident memory (MB) before and after each of ``iterations`` repeated ``resid_pre`` sweeps of
    the benchmark pair, and its growth and linear trend over the second half (after the allocator settled)."""
    one, metric = bench_inputs(model)
    rss = []
    for _ in range(iterations):
        gc.collect()
        rss.append(_rss_mb())
        patch(model, one.clean, one.corrupted, metric, target="resid_pre", layers=layers, batch_size=batch_size)
    gc.collect()
    rss.append(_rss_mb())
    half = rss[len(rss) // 2 :]  # after the allocator has settled
    slope = float(np.polyfit(np.arange(len(half)), half, 1)[0]) if len(half) > 1 else 0.0
    return {
        "iterations": iterations,
        "rss_mb": rss,
        "growth_second_half_mb": half[-1] - half[0],
        "trend_second_half_mb_per_sweep": slope,
    }


def _mb(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} MB"


def sweep_line(target: str, entry: dict[str, Any]) -> str:
    """One sweep's summary (an entry of the result's ``sweeps``)."""
    rises = _mb(entry["lens_bias_peak_rss_rise_mb"]), _mb(entry["transformer_lens_peak_rss_rise_mb"])
    attribution = entry["attribution"]
    return (
        f"{target:>9} sweep {tuple(entry['shape'])}: lens_bias {entry['lens_bias_s']:.1f} s "
        f"({entry['lens_bias_forwards']} forwards, {entry['lens_bias_configs_run']} of {entry['configs']} "
        f"configurations run), TransformerLens {entry['transformer_lens_s']:.1f} s -> {entry['speedup']:.1f}x "
        f"faster (CPU time {entry['lens_bias_cpu_s']:.1f} s vs {entry['transformer_lens_cpu_s']:.1f} s: "
        f"{entry['cpu_speedup']:.1f}x); max |difference| {entry['max_abs_difference']:.2e}; peak RSS rise "
        f"{rises[0]} vs {rises[1]}; attribution patching {attribution['seconds']:.2f} s, vs exact: Pearson "
        f"{attribution['pearson']:.3f}, top-10 overlap {attribution['top_k_overlap']:.1f}"
    )


def memory_line(memory: dict[str, Any]) -> str:
    """The flat-memory check's summary (the result's ``memory``)."""
    rss = memory["rss_mb"]
    return (
        f"flat memory: RSS {rss[0]:.0f} MB before {memory['iterations']} resid_pre sweeps, "
        f"{' '.join(f'{value:.0f}' for value in rss[1:])} MB after each; over the second half "
        f"{memory['growth_second_half_mb']:+.1f} MB (trend {memory['trend_second_half_mb_per_sweep']:+.2f} MB "
        "per sweep)"
    )
