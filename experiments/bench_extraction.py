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


def rss_mb() -> float:
    """Current resident set size in MB (Linux /proc)."""
    import resource

    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def main(argv: list[str] | None = None) -> None:
    config, replot = cli.parse(Config, argv, description=__doc__, quick=QUICK)
    if replot is not None:
        raise InputError("bench_extraction saves no result to replot: run it without --replot.")
    import time  # the library is imported here, not at the top: --help speed

    import torch

    from lens_bias.data import contrast_split
    from lens_bias.forward.activations import extract
    from lens_bias.models import check_layers
    from lens_bias.prompts import continuation_batch

    if config.threads:
        torch.set_num_threads(config.threads)
    model = cli.load(config)
    layers = check_layers(model, config.layers)
    pairs = contrast_split("gender", n_train=config.n_prompts, seed=config.seed).train
    batch = continuation_batch(model.tokenizer, [p.prompt for p in pairs], [p.positive for p in pairs])
    extract(model, batch[0:2], layers)  # warm-up

    start = time.perf_counter()
    batched = extract(model, batch, layers, batch_size=config.batch_size)
    t_batched = time.perf_counter() - start

    start = time.perf_counter()
    single = torch.cat([extract(model, batch[i : i + 1], layers) for i in range(len(batch))])
    t_single = time.perf_counter() - start

    names = [f"blocks.{layer}.hook_resid_post" for layer in layers]
    start = time.perf_counter()
    rows = []
    for i in range(len(batch)):
        with torch.inference_mode():
            _, cache = model.run_with_cache(batch.tokens[i : i + 1, : batch.lengths[i]])
        rows.append(torch.stack([cache[name][0, -1] for name in names]))
        del cache
    cached = torch.stack(rows)
    t_cache = time.perf_counter() - start

    print(f"{len(batch)} prompts, layers {layers}, {torch.get_num_threads()} threads")
    print(f"batched extract (batch {config.batch_size}): {t_batched:7.2f} s")
    print(f"one prompt at a time:            {t_single:7.2f} s  ratio {t_single / t_batched:5.1f}x")
    print(f"run_with_cache, all hooks:       {t_cache:7.2f} s  ratio {t_cache / t_batched:5.1f}x")
    print(
        f"max |batched - single| = {(batched - single).abs().max():.2e}, "
        f"max |batched - run_with_cache| = {(batched - cached).abs().max():.2e}"
    )
    readings = []
    for _ in range(config.repeats):
        extract(model, batch, layers, batch_size=config.batch_size)
        readings.append(rss_mb())
    print(
        "RSS (MB) after each repeated extraction:",
        " ".join(f"{r:.0f}" for r in readings),
        f"| growth first->last {readings[-1] - readings[0]:+.0f} MB",
    )
    print(
        f"result size: {batched.numel() * batched.element_size() / 2**20:.2f} MB "
        f"([{len(batch)}, {len(layers)}, {model.cfg.d_model}])"
    )


if __name__ == "__main__":
    cli.run(main)
