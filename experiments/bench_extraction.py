"""Benchmark: batched residual extraction vs one prompt at a time vs ``run_with_cache``, side by side.

Prints, for the same prompts and threads in one run: wall time of each, the speed ratios, the max abs
difference between the three results, peak RSS growth, and RSS over repeated extractions (a long sweep
must not grow memory).

    python -m experiments.bench_extraction [--n-prompts 64] [--layers 0 8 16 24] [--repeats 5] [--quick]

It only prints (no saved result, so no ``--replot``). Runs on the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from experiments import cli
from lens_bias.errors import InputError

#: What --quick changes.
QUICK = {"n_prompts": 8, "repeats": 2}


@dataclass(frozen=True)
class Config(cli.RunConfig):
    """The benchmark's settings; ``seed`` picks the prompts, ``out`` and ``png`` are unused (it only prints)."""

    n_prompts: int = field(default=64, metadata={"help": "prompts (gender contrast-pair prompts)", "min": 1})
    layers: tuple[int, ...] = field(default=(0, 8, 16, 24), metadata={"help": "layers whose residual is read"})
    repeats: int = field(default=5, metadata={"help": "repeated extractions of the memory check", "min": 1})
    threads: int | None = field(default=None, metadata={"help": "torch threads (default: torch's own)", "min": 1})
    device: str = field(
        default="cpu", metadata={"help": "torch device (CPU only: memory is the process's)", "choices": ["cpu"]}
    )

    def __post_init__(self) -> None:
        if not self.layers:
            raise InputError("--layers: give at least one layer.")
        super().__post_init__()


def main(argv: list[str] | None = None) -> None:
    config, replot = cli.parse(Config, argv, description=__doc__, quick=QUICK)
    if replot is not None:
        raise InputError("bench_extraction saves no result to replot: run it without --replot.")
    import torch  # the library is imported here, not at the top: --help speed

    from lens_bias.data import contrast_split
    from lens_bias.forward.bench import bench_extraction
    from lens_bias.models import check_layers
    from lens_bias.prompts import continuation_batch

    if config.threads:
        torch.set_num_threads(config.threads)
    model = cli.load(config)
    layers = check_layers(model, config.layers)
    pairs = contrast_split("gender", n_train=config.n_prompts, seed=config.seed).train
    batch = continuation_batch(model.tokenizer, [p.prompt for p in pairs], [p.positive for p in pairs])
    bench = bench_extraction(model, batch, layers, batch_size=config.batch_size, repeats=config.repeats)
    print(f"{len(batch)} prompts, layers {layers}, {torch.get_num_threads()} threads")
    print(f"batched extract (batch {config.batch_size}): {bench.batched_s:7.2f} s")
    print(f"one prompt at a time:            {bench.single_s:7.2f} s  ratio {bench.single_s / bench.batched_s:5.1f}x")
    print(f"run_with_cache, all hooks:       {bench.cache_s:7.2f} s  ratio {bench.cache_s / bench.batched_s:5.1f}x")
    single, cache = bench.max_diff_single, bench.max_diff_cache
    print(f"max |batched - single| = {single:.2e}, max |batched - run_with_cache| = {cache:.2e}")
    growth = bench.rss_mb[-1] - bench.rss_mb[0]
    print(
        "RSS (MB) after each repeated extraction:",
        " ".join(f"{r:.0f}" for r in bench.rss_mb),
        f"| growth first->last {growth:+.0f} MB",
    )
    print(f"result size: {bench.result_mb:.2f} MB ([{', '.join(map(str, bench.shape))}])")


if __name__ == "__main__":
    cli.run(main)
