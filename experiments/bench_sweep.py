"""Benchmark: one sweep run serially, resumed from its saved cells, and on a local Ray instance, side by side.

The sweep is the steering study's likelihood readout over layers x multipliers (one cell per setting) on
``--n-pairs`` held-out StereoSet gender pairs, with a seeded random direction scaled to each layer's
residual norm (the timing does not depend on what the vector means). Prints, from one run on one machine:

- serial: the whole sweep in this process with ``--workers`` torch threads;
- resume: the same command again over its saved cells (all reused), and after losing half of them;
- Ray: ``--workers`` actors of one thread each on a local instance with as many CPUs: start-up (the
  instance and one model per worker) and the sweep itself, the speed ratio to serial, and the overhead
  per cell (the round trip of an empty cell through the same workers);
- the largest difference between the Ray and the serial results (0: the same numbers).

    python -m experiments.bench_sweep [--n-pairs 60] [--layers 8 16 24] [--multipliers -4 -2 2 4] [--workers 2]

It only prints (no saved result, no ``--replot``); the cells go to a temporary folder, removed at the end. With
``--device cuda`` each Ray worker takes one GPU (the local instance sees this machine's GPUs), as does the serial run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from experiments import cli
from lens_bias.errors import InputError

if TYPE_CHECKING:
    import numpy as np

    from lens_bias.data.records import ContrastPair
    from lens_bias.directions import SteeringVector
    from lens_bias.interventions import AddVector
    from lens_bias.models import AnyModel

#: What --quick changes.
QUICK = {"n_pairs": 12, "layers": (8, 16), "multipliers": (-4, 4)}


@dataclass(frozen=True)
class Config(cli.RunConfig):
    """The benchmark's settings; ``out`` and ``png`` are unused (it only prints)."""

    n_pairs: int = field(default=60, metadata={"help": "held-out gender pairs scored per cell", "min": 1})
    layers: tuple[int, ...] = field(default=(8, 16, 24), metadata={"help": "sweep layers"})
    multipliers: tuple[float, ...] = field(default=(-4, -2, 2, 4), metadata={"help": "sweep multipliers"})
    workers: int = field(default=2, metadata={"help": "Ray workers, and the serial run's torch threads", "min": 1})
    device: str = field(default="cpu", metadata={"help": "torch device of both runs", "choices": ["cpu", "cuda"]})

    def __post_init__(self) -> None:
        if not self.layers or not self.multipliers:
            raise InputError("--layers and --multipliers need at least one value each.")
        super().__post_init__()


@dataclass(frozen=True)
class Likelihood:
    """The cell's readout: the mean log-prob difference (stereotype - anti) of ``pairs`` under steering."""

    pairs: tuple[ContrastPair, ...]
    batch_size: int

    def __call__(self, model: AnyModel, steer: list[AddVector]) -> dict[str, Any]:
        from lens_bias.metrics import likelihood_preference

        preference = likelihood_preference(model, list(self.pairs), interventions=steer, batch_size=self.batch_size)
        return preference.mean_logprob_diff.to_dict()


def empty_cell(model: AnyModel, payload: int) -> dict[str, np.ndarray]:
    """A cell that does no work: its wall time through an executor is the executor's overhead."""
    import numpy as np  # the library and numpy are imported inside the functions: --help speed

    return {"x": np.array([payload])}


def random_vector(model: AnyModel, layers: tuple[int, ...], seed: int) -> SteeringVector:
    """A seeded random direction per layer with the norm of that layer's mean residual on a few texts."""
    import torch

    from lens_bias.directions import SteeringVector

    generator = torch.Generator().manual_seed(seed)
    directions = torch.randn(len(layers), model.cfg.d_model, generator=generator)
    _, cache = model.run_with_cache(model.to_tokens(["The nurse said that she would be late today."]))
    norms = torch.stack([cache[f"blocks.{layer}.hook_resid_pre"][0].norm(dim=-1).mean() for layer in layers])
    vector = directions / directions.norm(dim=-1, keepdim=True) * norms[:, None]
    return SteeringVector("random", layers, vector.detach(), norms.detach())


def main(argv: list[str] | None = None) -> None:
    config, replot = cli.parse(Config, argv, description=__doc__, quick=QUICK)
    if replot is not None:
        raise InputError("bench_sweep saves no result to replot: run it without --replot.")
    import tempfile
    import time

    import torch

    from lens_bias.cells import CellStore, model_key
    from lens_bias.data import contrast_split
    from lens_bias.executors import ModelSpec, RayExecutor
    from lens_bias.models import check_layers
    from lens_bias.steering import sweep

    torch.set_num_threads(config.workers)
    model = cli.load(config)
    check_layers(model, config.layers)
    pairs = tuple(contrast_split("gender", n_train=8, n_test=config.n_pairs, seed=config.seed).test)
    readout = Likelihood(pairs, config.batch_size)
    vector = random_vector(model, config.layers, config.seed)
    n_cells = len(config.layers) * len(config.multipliers)
    key = {"name": "bench_sweep", "pairs": config.n_pairs, "seed": config.seed}

    def run(cells: CellStore) -> tuple[float, list[dict[str, Any]]]:
        start = time.perf_counter()
        rows = sweep(model, vector, config.layers, config.multipliers, readout, cells=cells, readout=key, start=None)
        return time.perf_counter() - start, rows

    with tempfile.TemporaryDirectory() as folder:
        base = {"model": model_key(model)}
        serial_s, serial_rows = run(CellStore(Path(folder) / "serial", base))
        resumed_s, _ = run(CellStore(Path(folder) / "serial", base))
        for path in sorted((Path(folder) / "serial").iterdir())[::2]:
            path.unlink()
        half_s, _ = run(CellStore(Path(folder) / "serial", base))

        start = time.perf_counter()
        with RayExecutor(ModelSpec(config.model, config.device, config.dtype), workers=config.workers) as executor:
            executor.map(model, empty_cell, [0], lambda i, a: None, desc="warm-up", progress=False)
            startup_s = time.perf_counter() - start
            ray_s, ray_rows = run(CellStore(Path(folder) / "ray", base, executor=executor))
            n_empty, start = 20 * config.workers, time.perf_counter()
            executor.map(model, empty_cell, list(range(n_empty)), lambda i, a: None, desc="empty", progress=False)
            overhead_s = (time.perf_counter() - start) / n_empty
    difference = max(abs(a["value"] - b["value"]) for a, b in zip(serial_rows, ray_rows))
    print(f"sweep: {n_cells} cells ({len(config.layers)} layers x {len(config.multipliers)} multipliers), "
          f"{config.n_pairs} pairs each, {config.workers} cores")  # fmt: skip
    print(f"serial ({config.workers} threads): {serial_s:.1f} s ({serial_s / n_cells:.2f} s per cell)")
    print(f"resume, every cell saved: {resumed_s:.2f} s ({serial_s / max(resumed_s, 1e-9):.0f}x faster than the run)")
    print(f"resume, half the cells lost: {half_s:.1f} s ({half_s / serial_s:.2f} of the run)")
    print(f"Ray ({config.workers} workers x 1 thread): start-up {startup_s:.1f} s (instance + one model per worker); "
          f"sweep {ray_s:.1f} s ({serial_s / ray_s:.2f}x serial)")  # fmt: skip
    print(f"Ray overhead per cell (empty cells, {config.workers} workers): {overhead_s * 1e3:.1f} ms")
    print(f"largest |Ray - serial| over the {n_cells} readouts: {difference:.3g}")


if __name__ == "__main__":
    cli.run(main)
