"""Throughput of sentence scoring, side by side on the same tokens: a plain Hugging Face transformers forward (the
floor: the same token ids, each token's log-probability read, no hooks) and the project's CrowS-Pairs scoring
(:func:`lens_bias.benchmarks.crows_pairs.score_crows_pairs`: TransformerLens, hooks and all) at each precision,
with each path's decisions (which sentence of a pair is likelier) against the project's fp32 ones.

Beside them, when an interpreter with lm-evaluation-harness is given, the harness convention both ways on the same
pairs: lm-evaluation-harness's own ``crows_pairs_english`` task (:mod:`lens_bias.benchmarks.harness_driver`, in a
subprocess, on the same weights saved as a Hugging Face folder) and the project scoring exactly what it computes
(each sentence's summed log-probability after the tokenizer's BOS token, one forward per sentence).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from jaxtyping import Bool, Float
from transformers import AutoTokenizer

from lens_bias.benchmarks.crows_pairs import score_crows_pairs
from lens_bias.data.crows_pairs import CrowsPair
from lens_bias.errors import InputError
from lens_bias.forward.readouts import by_length, target_logprobs, token_logprobs
from lens_bias.models import load_hf, load_model, resolve_model, tokenizer_of
from lens_bias.prompts import continuation_batch, harness_prefix_id

#: The harness paths' convention (their decisions are compared with each other's, not with lens_bias's).
HARNESS = "harness"


@dataclass(frozen=True)
class PathTiming:
    """One path over the pairs: ``seconds`` of wall time and ``cpu_seconds`` of the process's CPU time (every
    thread; on a machine shared with other jobs the steadier of the two), model load not included; ``tokens``
    read (every real token of both sentences, the document-start token included); ``whole``: ``[n]`` whether
    the stereotyping sentence scores higher by the whole-sentence sum, ``margin`` the difference (nats);
    ``shared``: the same over the shared tokens (the plain forward reads whole sentences only: None);
    ``convention``: ``lens_bias`` (after the document-start token) or :data:`HARNESS` (after the BOS token)."""

    name: str
    seconds: float
    cpu_seconds: float
    tokens: int
    whole: Bool[np.ndarray, " n"]
    shared: Bool[np.ndarray, " n"] | None
    margin: Float[np.ndarray, " n"]
    convention: str = "lens_bias"

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds

    @property
    def tokens_per_cpu_s(self) -> float:
        return self.tokens / self.cpu_seconds


def plain_forward_sums(hf_model: Any, tokenizer: Any, texts: Sequence[str], *, batch_size: int) -> np.ndarray:
    """``[n]`` summed log P (nats) of every token of each text after the document-start token, by a plain Hugging
    Face forward over exactly the tokens of the project's readouts (right padding, attention mask; the texts sorted
    by length, as lm-evaluation-harness and the project's readouts batch them, so the floor carries little padding)."""
    batch, order = by_length(continuation_batch(tokenizer, [""] * len(texts), texts))
    sums = []
    with torch.inference_mode():
        for chunk in batch.chunks(batch_size):
            mask = torch.arange(chunk.tokens.shape[1])[None] < chunk.lengths[:, None]
            logits = hf_model(input_ids=chunk.tokens, attention_mask=mask.long()).logits
            token_lp = target_logprobs(logits[:, :-1], chunk.tokens[:, 1:])
            sums.append((token_lp * mask[:, 1:]).sum(1).double())
    out = torch.empty(len(texts), dtype=torch.float64)
    out[order] = torch.cat(sums)
    return out.numpy()


def _timed(call: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[float, float, Any]:
    """``(wall seconds, process CPU seconds, result)`` of ``call(*args, **kwargs)``."""
    start, cpu = time.perf_counter(), time.process_time()
    out = call(*args, **kwargs)
    return time.perf_counter() - start, time.process_time() - cpu, out


def bench_throughput(
    model_name: str,
    pairs: Sequence[CrowsPair],
    *,
    dtypes: Sequence[str],
    batch_size: int,
    plain: bool = True,
    harness_python: str | None = None,
    threads: int | None = None,
) -> list[PathTiming]:
    """Each path over ``pairs`` after one warm-up chunk: the plain transformers forward in fp32 and bf16 (when
    ``plain``), then :func:`score_crows_pairs` on the model loaded in each of ``dtypes`` (names of
    :func:`lens_bias.load_model`); with ``harness_python`` (an interpreter where ``lm_eval`` imports), then
    lm-evaluation-harness's task at fp32 and the project's harness-convention scoring at each of ``dtypes``
    (:func:`harness_timing`; ``threads``: the harness's torch threads). One model is held at a time."""
    texts = [p.sent_more for p in pairs] + [p.sent_less for p in pairs]
    n = len(pairs)
    timings = []
    with tempfile.TemporaryDirectory() as folder:
        if plain or harness_python:
            hf_model, tokenizer = load_hf(resolve_model(model_name))
            hf_model.eval()
            if harness_python:  # the same weights for the harness, before any cast
                hf_model.save_pretrained(folder)
                tokenizer.save_pretrained(folder)
            if plain:
                timings += _plain_timings(hf_model, tokenizer, texts, n, batch_size)
            del hf_model
        if harness_python:
            harness = harness_timing(harness_python, Path(folder), pairs, batch_size=batch_size, threads=threads)
            timings.append(harness)
        for dtype in dtypes:
            model = load_model(model_name, device="cpu", dtype=dtype)
            tokens = int(continuation_batch(tokenizer_of(model), [""] * len(texts), texts).lengths.sum())
            score_crows_pairs(model, pairs[:1], batch_size=batch_size)
            seconds, cpu, scores = _timed(score_crows_pairs, model, pairs, batch_size=batch_size)
            whole = scores["whole"][:, 0] - scores["whole"][:, 1]
            shared = scores["shared"][:, 0] > scores["shared"][:, 1]
            timings.append(PathTiming(f"lens_bias {dtype}", seconds, cpu, tokens, whole > 0, shared, whole))
            if harness_python:
                start = harness_prefix_id(tokenizer_of(model))
                tokens = int(
                    continuation_batch(tokenizer_of(model), [""] * len(texts), texts, start_id=start).lengths.sum()
                )
                seconds, cpu, sums = _timed(_harness_sums, model, texts, start, batch_size)
                diff = sums[:n] - sums[n:]
                name = f"lens_bias {dtype} (harness)"
                timings.append(PathTiming(name, seconds, cpu, tokens, diff > 0, None, diff, HARNESS))
            del model
    return timings


def _plain_timings(hf_model: Any, tokenizer: Any, texts: list[str], n: int, batch_size: int) -> list[PathTiming]:
    tokens = int(continuation_batch(tokenizer, [""] * len(texts), texts).lengths.sum())
    timings = []
    for name, torch_dtype in (("transformers float32", torch.float32), ("transformers bfloat16", torch.bfloat16)):
        hf_model.to(torch_dtype)
        plain_forward_sums(hf_model, tokenizer, texts[:2], batch_size=batch_size)
        seconds, cpu, sums = _timed(plain_forward_sums, hf_model, tokenizer, texts, batch_size=batch_size)
        diff = sums[:n] - sums[n:]
        timings.append(PathTiming(name, seconds, cpu, tokens, diff > 0, None, diff))
    hf_model.to(torch.float32)
    return timings


def _harness_sums(model: Any, texts: list[str], start_id: int, batch_size: int) -> np.ndarray:
    """``[n]`` each text's summed log P (nats) after ``start_id``: what lm-evaluation-harness computes for a
    loglikelihood request with an empty context."""
    scores = token_logprobs(model, texts, start_id=start_id, batch_size=batch_size)
    return np.array([row.double().sum().item() for row in scores.logprobs])


def harness_timing(
    python: str, model_folder: Path, pairs: Sequence[CrowsPair], *, batch_size: int, threads: int | None
) -> PathTiming:
    """lm-evaluation-harness's ``crows_pairs_english`` on ``pairs``, run by ``python`` (an interpreter where
    ``lm_eval`` imports) on the Hugging Face folder ``model_folder`` in fp32: its own timing of the evaluation
    (model load and a one-pair warm-up excluded; CPU seconds of its process) and its per-pair log-likelihoods.
    ``tokens``: every sentence's tokens plus its BOS token, as the harness reads them. Raises
    :class:`InputError` with the harness's last output lines when it fails."""
    with tempfile.TemporaryDirectory() as folder:
        csv, out, spec = (Path(folder) / name for name in ("pairs.csv", "out.json", "spec.json"))
        rows = [{"sent_more": p.sent_more, "sent_less": p.sent_less, "bias_type": p.bias_type} for p in pairs]
        pd.DataFrame(rows).to_csv(csv, index=False)
        settings = {"csv": str(csv), "model": str(model_folder), "dtype": "float32", "batch_size": batch_size}
        spec.write_text(json.dumps({**settings, "threads": threads, "out": str(out)}), encoding="utf-8")
        driver = Path(__file__).with_name("harness_driver.py")
        env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        run = subprocess.run([python, str(driver), str(spec)], capture_output=True, text=True, env=env)
        if run.returncode != 0 or not out.is_file():
            tail = " | ".join((run.stderr or run.stdout).strip().splitlines()[-3:])
            raise InputError(f"lm-evaluation-harness ({python}) failed on the CrowS-Pairs task: {tail}")
        record = json.loads(out.read_text(encoding="utf-8"))
    lls = np.asarray(record["lls"], dtype=np.float64)
    tokenizer = AutoTokenizer.from_pretrained(model_folder)
    texts = [p.sent_more for p in pairs] + [p.sent_less for p in pairs]
    tokens = sum(len(tokenizer(text, add_special_tokens=False).input_ids) + 1 for text in texts)
    diff = lls[:, 0] - lls[:, 1]
    name = "lm-evaluation-harness float32"
    return PathTiming(name, record["seconds"], record["cpu_seconds"], tokens, diff > 0, None, diff, HARNESS)


def check_harness_python(python: str) -> None:
    """Raise :class:`InputError` unless ``python`` runs and imports ``lm_eval`` (checked before any model loads)."""
    try:
        run = subprocess.run([python, "-c", "import lm_eval"], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise InputError(f"--harness-python {python}: cannot run it ({error}); give a Python interpreter.") from error
    if run.returncode != 0:
        raise InputError(
            f"--harness-python {python}: `import lm_eval` fails there; give an interpreter of an environment with "
            "lm-evaluation-harness installed (pip install 'lm_eval[hf]')."
        )


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
