"""Which edges carry a stereotype? Edge attribution patching and circuits with measured faithfulness.

``--pairs gender_swap``: the gender-pronoun term-swap pairs of :mod:`experiments.patching` (one template,
``--group``; clean prompt with a term stereotyped one way, corrupted with a term stereotyped the other way;
pairs of the most common token length whose clean metric beats the corrupted one by ``--min-gap`` nats).
Metric: logit(clean's stereotyped pronoun) - logit(the other pronoun) at the last prompt token.

Every edge of the model's graph (input, attention heads with their query/key/value inputs apart, MLPs,
logits; :mod:`lens_bias.circuits`) is scored by EAP or EAP-IG (``--method``, ``--steps``); ``--n-edges``
edges (half the top-scored, half at random) are patched exactly as the ground truth (correlation and time
of each); the top circuit of each size in ``--circuit-sizes`` (pruned) is evaluated with every other edge
patched to the corrupted run: faithfulness (1 = clean behaviour, 0 = corrupted), ``--n-random`` random
circuits of the same size, and completeness (the complement alone). The exact patching and the circuits are
resumable cells under ``{out}/cells`` (a rerun reuses them; ``--executor ray`` runs them on Ray workers).
Writes ``{out}/circuits.json`` + ``.safetensors`` and the figures
``{out}/circuits_{diagram,faithfulness}.{html,png}`` (``circuits_quick*``).

    python -m experiments.circuits [--method eap_ig] [--steps 5] [--n-pairs 16] [--n-edges 40] [--quick]
    python -m experiments.circuits --replot figures/circuits/circuits.json
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

from experiments import cli
from experiments.patching import GROUPS

if TYPE_CHECKING:
    from lens_bias.circuits.scores import Method
    from lens_bias.provenance import Result

#: What --quick changes (a smoke run).
QUICK = {
    "n_pairs": 4,
    "steps": 2,
    "n_edges": 16,
    "n_random": 2,
    "circuit_sizes": (10, 100, 1000),
    "stem": "circuits_quick",
}


@dataclass(frozen=True)
class Config(cli.SweepConfig):
    """Edge scores, exact edge patching and faithfulness curves of term-swap pairs (see the module docstring)."""

    pairs: str = field(default="gender_swap", metadata={"help": "the pair set", "choices": ["gender_swap"]})
    group: str = field(
        default="occupation-t0",
        metadata={"help": "gender_swap pairs: the template the pairs come from", "choices": GROUPS},
    )
    n_pairs: int = field(default=16, metadata={"help": "pairs kept among those with the gap", "min": 1})
    min_gap: float = field(
        default=1.0, metadata={"help": "keep pairs whose clean - corrupted metric is at least this (nats)", "min": 0}
    )
    method: str = field(default="eap_ig", metadata={"help": "edge scores", "choices": ["eap", "eap_ig"]})
    steps: int = field(default=5, metadata={"help": "eap_ig: points on the corrupted-clean path", "min": 1})
    n_edges: int = field(default=40, metadata={"help": "edges patched exactly (half top, half random)", "min": 2})
    circuit_sizes: tuple[int, ...] = field(
        default=(10, 30, 100, 300, 1000, 3000), metadata={"help": "circuit sizes (edges, before pruning)", "min": 1}
    )
    n_random: int = field(default=3, metadata={"help": "random circuits per size (the baseline)", "min": 0})
    stem: str = field(
        default="circuits",
        metadata={"help": "file name of the result and the figures, without suffix (--quick: circuits_quick)"},
    )
    out: Path = field(default=Path("figures/circuits"), metadata={"help": "output folder (results, figures)"})


def run(config: Config) -> Path:
    """Select the pairs, score every edge, patch a sample exactly, evaluate the circuits; save, return the path."""
    from lens_bias.cells import CellStore, model_key
    from lens_bias.circuits.study import circuit_study
    from lens_bias.data.records import fingerprint
    from lens_bias.models import load_model, model_record
    from lens_bias.patching import PatchingInputs, select_pairs
    from lens_bias.provenance import Result, collect_provenance, set_seed

    set_seed(config.seed)
    model = load_model(config.model, device=config.device, dtype=config.dtype)
    inputs, counts = select_pairs(
        model, config.pairs, group=config.group, n_pairs=config.n_pairs, min_gap=config.min_gap, seed=config.seed
    )
    with cli.executor(config) as executor:
        values, tensors = circuit_study(
            model,
            cast("PatchingInputs", inputs),
            method=cast("Method", config.method),
            steps=config.steps,
            sizes=config.circuit_sizes,
            n_random=config.n_random,
            n_edges=config.n_edges,
            seed=config.seed,
            batch_size=config.batch_size,
            cells=CellStore(config.out / "cells", {"model": model_key(model)}, executor=executor),
        )
    provenance = collect_provenance(
        model_record=model_record(model).to_dict(), data={config.pairs: fingerprint(inputs.pairs)}, seed=config.seed
    )
    record = {"pair_ids": [pair.id for pair in inputs.pairs]}
    result = Result("circuits", {"pairs": counts, **values}, {**config.to_dict(), **record}, provenance, tensors)
    return result.save(config.out / config.stem)


def summarize(result: Result) -> str:
    """The headline numbers of a saved result (what a run prints): edge scores against exact patching, the circuits."""
    from lens_bias.figures.circuits import summary

    return "\n".join(summary(result))


def report(result: Result, path: Path, config: Config) -> None:
    """Print the summary of a saved result and draw its figures next to it."""
    from lens_bias.figures.circuits import save_figures

    print(summarize(result))
    print("wrote", path)
    print("wrote", *save_figures(result, Path(path).with_suffix(""), png=config.png))


def main(argv: list[str] | None = None) -> Result:
    return cli.main(Config, argv, description=__doc__, quick=QUICK, result_name="circuits", run=run, report=report)


if __name__ == "__main__":
    cli.run(main)
