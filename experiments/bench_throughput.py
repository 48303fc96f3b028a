"""Benchmark: scoring throughput side by side on the same tokens, and what reduced precision changes.

Prints, in one run on the same CrowS-Pairs sentences (the same token ids everywhere): a plain Hugging Face
transformers forward in fp32 and bf16 (the floor: each token's log-probability, no hooks), the project's
CrowS-Pairs scoring at each ``--dtypes`` (TransformerLens, hooks and all), and, with ``--harness-python`` (an
interpreter of an environment where lm-evaluation-harness is installed; default this one when it has ``lm_eval``),
lm-evaluation-harness's own ``crows_pairs_english`` task beside the project scoring the same convention; wall and CPU
time, tokens per CPU second, each path's CPU time against the plain fp32 forward (the
floor) and against the project's scoring at the first ``--dtypes`` (the reference), and
how often each path's decisions (which sentence of a pair is likelier, whole sentence and shared tokens) agree with
the reference's, with the reference's margins (nats) of the pairs that flipped. The harness convention's paths are
compared with lm-evaluation-harness (its CPU time over theirs: how many times faster; its decisions).

    python -m experiments.bench_throughput [--n-pairs 300] [--dtypes float32 bfloat16 bf16_mixed] [--quick]
    python -m experiments.bench_throughput --harness-python /path/to/harness-venv/bin/python

It only prints (no saved result, so no ``--replot``). Runs on the CPU. The ratios are of CPU time, which other jobs
on the machine change less than wall time (least with ``--threads 1``: no thread waits on a busy core); compare
paths within a run.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from experiments import cli
from experiments.config import DTYPES
from lens_bias.errors import InputError

if TYPE_CHECKING:
    from lens_bias.benchmarks.throughput import PathTiming

#: What --quick changes.
QUICK = {"n_pairs": 24, "dtypes": ("float32", "bf16_mixed")}


@dataclass(frozen=True)
class Config(cli.RunConfig):
    """The benchmark's settings; ``seed`` picks the pairs, ``out`` and ``png`` are unused (it only prints)."""

    n_pairs: int = field(default=300, metadata={"help": "CrowS-Pairs pairs (seeded sample)", "min": 1})
    dtypes: tuple[str, ...] = field(
        default=("float32", "bfloat16", "bf16_mixed"),
        metadata={"help": "precisions of the project's scoring (the first is the reference)", "choices": DTYPES},
    )
    plain: bool = field(default=True, metadata={"help": "skip the plain transformers forward", "flag": "--no-plain"})
    harness_python: str | None = field(
        default=None, metadata={"help": "interpreter with lm_eval installed (default: this one if it has lm_eval)"}
    )
    threads: int | None = field(default=None, metadata={"help": "torch threads (default: torch's own)", "min": 1})
    batch_size: int = field(default=16, metadata={"help": "rows per forward pass", "min": 1})
    device: str = field(default="cpu", metadata={"help": "torch device (CPU only)", "choices": ["cpu"]})

    def __post_init__(self) -> None:
        if not self.dtypes:
            raise InputError("--dtypes: give at least one precision.")
        super().__post_init__()


def main(argv: list[str] | None = None) -> None:
    config, replot = cli.parse(Config, argv, description=__doc__, quick=QUICK)
    if replot is not None:
        raise InputError("bench_throughput saves no result to replot: run it without --replot.")
    import importlib.util

    import numpy as np
    import torch  # the library is imported here, not at the top: --help speed

    from lens_bias.benchmarks.throughput import HARNESS, bench_throughput, check_harness_python
    from lens_bias.data.crows_pairs import load_crows_pairs

    harness = config.harness_python or (sys.executable if importlib.util.find_spec("lm_eval") else None)
    if harness is not None:
        check_harness_python(harness)
    if config.threads:
        torch.set_num_threads(config.threads)
    pairs = load_crows_pairs()
    if config.n_pairs < len(pairs):
        keep = np.random.default_rng(config.seed).choice(len(pairs), config.n_pairs, replace=False)
        pairs = [pairs[i] for i in sorted(keep)]
    timings = bench_throughput(
        config.model, pairs, dtypes=config.dtypes, batch_size=config.batch_size, plain=config.plain,
        harness_python=harness, threads=config.threads,
    )  # fmt: skip
    ours = [t for t in timings if t.convention != HARNESS]
    floor, reference = ours[0], next(t for t in ours if t.name.startswith("lens_bias"))
    print(
        f"{len(pairs)} CrowS-Pairs pairs, {floor.tokens} tokens, batch {config.batch_size}, "
        f"{torch.get_num_threads()} threads, model {config.model}"
    )
    _table(ours, floor, reference, "vs floor")
    if harness is None:
        print("lm-evaluation-harness: not installed here and no --harness-python given, skipped")
        return
    theirs = [t for t in timings if t.convention == HARNESS]
    print(f"\nThe harness convention (after BOS), {theirs[0].tokens} tokens; x faster = harness CPU / path CPU")
    _table(theirs, theirs[0], theirs[0], "x faster", faster=True)


def _table(
    timings: list[PathTiming], floor: PathTiming, reference: PathTiming, label: str, faster: bool = False
) -> None:
    from lens_bias.benchmarks.throughput import agreement

    print(f"{'path':30s} {'wall':>8s} {'CPU':>8s} {'tok/CPU s':>9s} {label:>8s} {'vs ref':>7s}  agreement with ref")
    for t in timings:
        agree = agreement(t, reference)
        shared = f", shared {100 * agree['shared']:.1f}%" if "shared" in agree else ""
        ratio = floor.cpu_seconds / t.cpu_seconds if faster else t.cpu_seconds / floor.cpu_seconds
        print(
            f"{t.name:30s} {t.seconds:7.2f}s {t.cpu_seconds:7.2f}s {t.tokens_per_cpu_s:9.0f} "
            f"{ratio:7.2f}x {t.cpu_seconds / reference.cpu_seconds:6.2f}x  "
            f"whole {100 * agree['whole']:.1f}%{shared} (flipped at ref margins {agree['flipped_margins']})"
        )


if __name__ == "__main__":
    cli.run(main)
