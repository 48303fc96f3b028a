"""Benchmark: lens_bias.patching vs transformer_lens.patching on the same pair, model and threads
(the measurements: :mod:`lens_bias.patching.bench`).

Two sweeps, each run by both libraries on the same pair with the same number of torch threads, every
sweep in a fresh process (spawned from this one, so that memory an earlier sweep freed to the allocator
cannot hide a later sweep's peak):

* residual stream, layer x position (``target="resid_pre"`` vs ``get_act_patch_resid_pre``);
* attention heads, layer x head over all positions (``target="z"`` vs
  ``get_act_patch_attn_head_out_all_pos``).

For each, also lens_bias's attribution patching on the same pair (two forwards and one backward, timed in
this process) and its agreement with the exact sweep (:func:`lens_bias.patching.agreement`: Pearson of
the effect maps, top-10 overlap).

Reported per sweep: the wall time and the CPU time (all threads of the process) of each (TransformerLens's
includes the ``run_with_cache`` of the clean run its functions need, lens_bias's its caching forward) and
their ratios (on a machine shared with other jobs the wall time of a long sweep swings with their load;
the CPU time much less so), the max abs difference of the
raw patched metric (logit difference, nats), and the peak memory of each: the rise of Linux's ``VmHWM``
above the resident memory at the start of the sweep (the peak is reset through ``/proc/self/clear_refs``).
Then a flat-memory check in this process: the resident memory (``VmRSS``) before and after each of
``--iterations`` repeated lens_bias sweeps, and its growth over the second half of them (the allocator
settles during the first few).

    python -m experiments.bench_patching [--model NAME] [--threads N] [--n-layers 6] [--quick]
    python -m experiments.bench_patching --replot figures/patching/bench_patching.json

``--n-layers`` sweeps that many evenly spaced layers instead of all of them (both libraries, same layers);
``--quick`` sweeps 6 and repeats the memory check 4 times. Results go to ``{out}/{stem}.json``
(``bench_patching.json``, ``bench_patching_quick.json`` with ``--quick``) with their config and provenance;
the summary is printed from the saved result, so ``--replot`` prints it again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from experiments import cli

if TYPE_CHECKING:
    from lens_bias.provenance import Result

#: What --quick changes.
QUICK = {"n_layers": 6, "iterations": 4, "stem": "bench_patching_quick"}


@dataclass(frozen=True)
class Config(cli.RunConfig):
    """The benchmark's settings (see the module docstring). Runs on the CPU: peak memory is the process's."""

    threads: int | None = field(default=None, metadata={"help": "torch threads (default: torch's own)", "min": 1})
    n_layers: int | None = field(
        default=None,
        metadata={"help": "layers swept, evenly spaced from the first to the last (default: every layer)", "min": 1},
    )
    iterations: int = field(default=12, metadata={"help": "repeated sweeps of the memory check", "min": 1})
    stem: str = field(
        default="bench_patching",
        metadata={"help": "file name of the result, without suffix (--quick: bench_patching_quick)"},
    )
    device: str = field(
        default="cpu", metadata={"help": "torch device (CPU only: peak memory is the process's)", "choices": ["cpu"]}
    )
    batch_size: int = field(default=64, metadata={"help": "lens_bias rows per patched forward", "min": 1})
    out: Path = field(default=Path("figures/patching"), metadata={"help": "output folder (results)"})

    def __post_init__(self) -> None:
        from lens_bias.errors import InputError  # inside: --help speed (as every library import here)

        if not self.stem or Path(self.stem).name != self.stem:
            raise InputError(f"--stem {self.stem!r}: give a file name without folders (the folder is --out).")
        super().__post_init__()


def run(config: Config) -> Path:
    """Run both sweeps with both libraries and the flat-memory check; save the result, return its path."""
    import torch

    from lens_bias.models import load_model, model_record
    from lens_bias.patching.bench import (
        DEFINITIONS,
        SWEEPS,
        bench_inputs,
        bench_target,
        flat_memory,
        memory_line,
        sweep_line,
        swept_layers,
    )
    from lens_bias.provenance import Result, collect_provenance

    if config.threads:
        torch.set_num_threads(config.threads)
    model = load_model(config.model, device=config.device, dtype=config.dtype)
    layers = swept_layers(model.cfg.n_layers, config.n_layers)
    one, _ = bench_inputs(model)
    print(
        f"model {config.model}, {torch.get_num_threads()} torch threads; pair {one.pairs[0].id}: "
        f"{one.clean.texts[0]!r} vs {one.corrupted.texts[0]!r}, {one.clean.tokens.shape[1]} tokens; "
        f"layers {layers[0]}..{layers[-1]} ({len(layers)}); each sweep in its own process"
    )
    sweeps: dict[str, dict[str, Any]] = {}
    for target in SWEEPS:
        sweeps[target] = bench_target(model, config.model, target, layers, batch_size=config.batch_size)
        print(sweep_line(target, sweeps[target]))
    memory = flat_memory(model, layers, iterations=config.iterations, batch_size=config.batch_size)
    recorded = {**config.to_dict(), "layers": layers, "pair": one.pairs[0].id}
    recorded |= {"n_tokens": int(one.clean.tokens.shape[1]), "threads": torch.get_num_threads(), **DEFINITIONS}
    provenance = collect_provenance(model_record=model_record(model).to_dict())
    path = Result("bench_patching", {"sweeps": sweeps, "memory": memory}, recorded, provenance).save(
        config.out / config.stem
    )
    print(memory_line(memory))
    print("wrote", path)
    return path


def report(result: Result, path: Path, config: Config) -> None:
    """Print the summary of a saved result."""
    from lens_bias.patching.bench import memory_line, sweep_line

    for target, entry in result.values["sweeps"].items():
        print(sweep_line(target, entry))
    print(memory_line(result.values["memory"]))


def main(argv: list[str] | None = None) -> Result:
    ran: list[Path] = []  # a run prints its lines as they are measured: report only a --replot

    def run_once(config: Config) -> Path:
        ran.append(run(config))
        return ran[-1]

    def report_replot(result: Result, path: Path, config: Config) -> None:
        if path not in ran:
            report(result, path, config)

    return cli.main(
        Config, argv, description=__doc__, quick=QUICK, result_name="bench_patching", run=run_once, report=report_replot
    )


if __name__ == "__main__":
    cli.run(main)
