"""Throughput of sentence scoring, side by side on the same tokens: a plain Hugging Face transformers forward (the
floor: the same token ids, each token's log-probability read, no hooks) and the project's CrowS-Pairs scoring
(:func:`lens_bias.benchmarks.crows_pairs.score_crows_pairs`: TransformerLens, hooks and all) at each precision,
with each path's decisions (which sentence of a pair is likelier) against the project's fp32 ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from jaxtyping import Bool, Float

from lens_bias.benchmarks.crows_pairs import score_crows_pairs
from lens_bias.data.crows_pairs import CrowsPair
from lens_bias.models import load_hf, load_model, resolve_model, tokenizer_of
from lens_bias.prompts import continuation_batch


@dataclass(frozen=True)
class PathTiming:
    """One path over the pairs: ``seconds`` of wall time and ``cpu_seconds`` of the process's CPU time (every
    thread; on a machine shared with other jobs the steadier of the two), model load not included; ``tokens``
    read (every real token of both sentences, the document-start token included); ``whole``: ``[n]`` whether
    the stereotyping sentence scores higher by the whole-sentence sum, ``margin`` the difference (nats);
    ``shared``: the same over the shared tokens (the plain forward reads whole sentences only: None)."""

    name: str
    seconds: float
    cpu_seconds: float
    tokens: int
    whole: Bool[np.ndarray, " n"]
    shared: Bool[np.ndarray, " n"] | None
    margin: Float[np.ndarray, " n"]

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds

    @property
    def tokens_per_cpu_s(self) -> float:
        return self.tokens / self.cpu_seconds


def plain_forward_sums(hf_model: Any, tokenizer: Any, texts: Sequence[str], *, batch_size: int) -> np.ndarray:
    """``[n]`` summed log P (nats) of every token of each text after the document-start token, by a plain Hugging
    Face forward over exactly the tokens of the project's readouts (right padding, attention mask)."""
    batch = continuation_batch(tokenizer, [""] * len(texts), texts)
    sums = []
    with torch.inference_mode():
        for chunk in batch.chunks(batch_size):
            mask = torch.arange(chunk.tokens.shape[1])[None] < chunk.lengths[:, None]
            logits = hf_model(input_ids=chunk.tokens, attention_mask=mask.long()).logits
            token_lp = logits[:, :-1].float().log_softmax(-1).gather(-1, chunk.tokens[:, 1:, None])[..., 0]
            sums.append((token_lp * mask[:, 1:]).sum(1).double())
    return torch.cat(sums).numpy()


def _timed(call: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[float, float, Any]:
    """``(wall seconds, process CPU seconds, result)`` of ``call(*args, **kwargs)``."""
    start, cpu = time.perf_counter(), time.process_time()
    out = call(*args, **kwargs)
    return time.perf_counter() - start, time.process_time() - cpu, out


def bench_throughput(
    model_name: str, pairs: Sequence[CrowsPair], *, dtypes: Sequence[str], batch_size: int, plain: bool = True
) -> list[PathTiming]:
    """Each path over ``pairs`` after one warm-up chunk: the plain transformers forward in fp32 and bf16 (when
    ``plain``), then :func:`score_crows_pairs` on the model loaded in each of ``dtypes`` (names of
    :func:`lens_bias.load_model`). One model is held at a time."""
    texts = [p.sent_more for p in pairs] + [p.sent_less for p in pairs]
    n = len(pairs)
    timings = []
    if plain:
        hf_model, tokenizer = load_hf(resolve_model(model_name))
        hf_model.eval()
        tokens = int(continuation_batch(tokenizer, [""] * len(texts), texts).lengths.sum())
        for name, torch_dtype in (("transformers float32", torch.float32), ("transformers bfloat16", torch.bfloat16)):
            hf_model.to(torch_dtype)
            plain_forward_sums(hf_model, tokenizer, texts[:2], batch_size=batch_size)
            seconds, cpu, sums = _timed(plain_forward_sums, hf_model, tokenizer, texts, batch_size=batch_size)
            diff = sums[:n] - sums[n:]
            timings.append(PathTiming(name, seconds, cpu, tokens, diff > 0, None, diff))
        del hf_model
    for dtype in dtypes:
        model = load_model(model_name, device="cpu", dtype=dtype)
        tokens = int(continuation_batch(tokenizer_of(model), [""] * len(texts), texts).lengths.sum())
        score_crows_pairs(model, pairs[:1], batch_size=batch_size)
        seconds, cpu, scores = _timed(score_crows_pairs, model, pairs, batch_size=batch_size)
        whole = scores["whole"][:, 0] - scores["whole"][:, 1]
        shared = scores["shared"][:, 0] > scores["shared"][:, 1]
        timings.append(PathTiming(f"lens_bias {dtype}", seconds, cpu, tokens, whole > 0, shared, whole))
        del model
    return timings


def agreement(path: PathTiming, reference: PathTiming) -> dict[str, Any]:
    """How often ``path`` decides as ``reference`` (whole-sentence and, where both read it, shared-token), and the
    reference's margins (nats) of the pairs that flipped (near-ties flip first)."""
    flips = np.flatnonzero(path.whole != reference.whole)
    out: dict[str, Any] = {
        "whole": float((path.whole == reference.whole).mean()),
        "flipped_margins": np.abs(reference.margin[flips]).round(4).tolist(),
    }
    if path.shared is not None and reference.shared is not None:
        out["shared"] = float((path.shared == reference.shared).mean())
    return out
