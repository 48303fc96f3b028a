"""Which edges carry a stereotype? Edge attribution patching, circuits with measured faithfulness, and the
overlap of the circuits of different bias types, checkpoints and studies.

``--pairs``: contrasts (:mod:`lens_bias.circuits.contrasts`): ``gender_swap`` (term swaps of template ``--group``,
logit difference of the pronouns), its control ``gender_definitional`` ("The woman/man ...": a stated gender),
``stereoset:<type>`` and ``crows_pairs:<type>`` (minimal sentence pairs, clean = the stereotype, metric = log P of
the shared continuation); each keeps ``--n-pairs`` pairs with a clean - corrupted gap of at least ``--min-gap``.

Per contrast, every edge (input, heads with q/k/v inputs apart, MLPs, logits) is scored by EAP or EAP-IG
(``--method``, ``--steps``); ``--n-edges`` edges (half top, half random) are patched exactly (correlation, time);
the top circuit of each of ``--circuit-sizes`` (pruned) is evaluated with every other edge patched to the corrupted
run or mean-ablated (``--ablation``): faithfulness (1 = clean, 0 = the baseline), ``--n-random`` random circuits of
the same size, completeness (the complement alone). Overlap: the Jaccard of the contrasts' top ``--overlap-edges``
edges, split halves on the diagonal (``--no-split-half`` skips them), chance. ``--compare-checkpoint`` (e.g. the
LoRA fine-tune): each contrast's circuit there vs here (figure ``circuits_checkpoints``). ``--compare-circuits`` (a
saved result of the same weights with edge scores, e.g. ``biasscope.json``'s injected circuits): the Jaccard with
each of them (figure ``circuits_saved``). Exact patching and circuits are resumable cells under ``{out}/cells``
(``--executor ray``). Writes ``{out}/circuits.json`` + ``.safetensors`` and figures
``circuits_{contrast}_{diagram,faithfulness}``, ``circuits_overlap`` (``circuits_quick*`` with --quick).

    python -m experiments.circuits [--pairs gender_swap stereoset:gender crows_pairs:race-color] [--quick]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

from experiments import cli
from experiments.bias_profile import STEREOSET_BIAS_TYPES
from experiments.patching import CROWS_TYPES, GROUPS
from lens_bias.errors import InputError

if TYPE_CHECKING:
    from lens_bias.circuits.scores import Method
    from lens_bias.provenance import Result

#: Every contrast (lens_bias.circuits.contrasts.contrast_names, a test checks they agree).
CONTRASTS = ("gender_swap", "gender_definitional", *(f"stereoset:{k}" for k in STEREOSET_BIAS_TYPES))
CONTRASTS += tuple(f"crows_pairs:{k}" for k in CROWS_TYPES)
#: What --quick changes (a smoke run).
QUICK = {"n_pairs": 4, "steps": 2, "n_edges": 16, "n_random": 2, "circuit_sizes": (10, 100, 1000)}
QUICK |= {"overlap_edges": 100, "stem": "circuits_quick"}


@dataclass(frozen=True)
class Config(cli.SweepConfig):
    """Edge scores, exact edge patching, faithfulness curves and overlaps of contrasts (the module docstring)."""

    pairs: tuple[str, ...] = field(default=("gender_swap",), metadata={"help": "contrasts (module docstring)"})
    group: str = field(default="occupation-t0", metadata={"help": "gender_* contrasts' template", "choices": GROUPS})
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
    ablation: str = field(default="corrupted", metadata={"help": "non-circuit edges", "choices": ["corrupted", "mean"]})
    overlap_edges: int = field(default=1000, metadata={"help": "top edges per contrast compared by Jaccard", "min": 1})
    split_half: bool = field(default=True, metadata={"help": "each contrast's split-half Jaccard (scores halves)"})
    compare_checkpoint: str | None = field(
        default=None, metadata={"help": "a second checkpoint (e.g. the fine-tune): each circuit there vs here"}
    )
    compare_circuits: Path | None = field(
        default=None, metadata={"help": "a saved result of these weights with edge scores (e.g. biasscope.json)"}
    )
    stem: str = field(default="circuits", metadata={"help": "result and figure file stem (--quick: circuits_quick)"})
    out: Path = field(default=Path("figures/circuits"), metadata={"help": "output folder (results, figures)"})

    def __post_init__(self) -> None:
        unknown = [name for name in self.pairs if name not in CONTRASTS]
        if not self.pairs or unknown or len(set(self.pairs)) != len(self.pairs):
            raise InputError(f"--pairs takes distinct contrasts among {', '.join(CONTRASTS)}; got {list(self.pairs)}.")
        super().__post_init__()


def run(config: Config) -> Path:
    """Select each contrast's pairs, score every edge, patch a sample exactly, evaluate the circuits, compare
    the contrasts' circuits; save, return the path."""
    from lens_bias.cells import CellStore, model_key
    from lens_bias.circuits.contrasts import select_contrasts
    from lens_bias.circuits.overlap import saved_circuits
    from lens_bias.circuits.study import contrast_studies
    from lens_bias.data.records import fingerprint
    from lens_bias.models import load_model, model_record
    from lens_bias.provenance import Result, collect_provenance, set_seed

    set_seed(config.seed)
    model = load_model(config.model, device=config.device, dtype=config.dtype)
    other = config.compare_checkpoint
    checkpoint = None if other is None else load_model(other, device=config.device, dtype=config.dtype)
    given = config.compare_circuits
    saved = None if given is None else saved_circuits(model, Result.load(given))  # before any scoring
    names = ("group", "n_pairs", "min_gap", "seed", "batch_size")  # flags of the same name
    inputs, counts = select_contrasts(model, config.pairs, **{n: getattr(config, n) for n in names})
    same = ("steps", "overlap_edges", "split_half", "seed", "n_random", "n_edges", "batch_size", "ablation")
    with cli.executor(config) as executor:
        values, tensors = contrast_studies(
            model,
            inputs,
            method=cast("Method", config.method),
            sizes=config.circuit_sizes,
            checkpoint=checkpoint,
            saved=saved,
            cells=CellStore(config.out / "cells", {"model": model_key(model)}, executor=executor),
            **{name: getattr(config, name) for name in same},  # flags of the same name
        )
    data = {name: fingerprint(pairs.pairs) for name, pairs in inputs.items()}
    provenance = collect_provenance(model_record=model_record(model).to_dict(), data=data, seed=config.seed)
    if checkpoint is not None:
        values["checkpoint"]["model"] = model_record(checkpoint).to_dict()
    if saved is not None:
        values["saved"]["source"] = str(given)
    record = {"pair_ids": {name: [pair.id for pair in pairs.pairs] for name, pairs in inputs.items()}}
    result = Result("circuits", {"pairs": counts, **values}, {**config.to_dict(), **record}, provenance, tensors)
    return result.save(config.out / config.stem)


def summarize(result: Result) -> str:
    """The headline numbers of a saved result, as a run prints them (the figures index reads them too)."""
    from lens_bias.figures.circuits import summary

    return "\n".join(summary(result))


def report(result: Result, path: Path, config: Config) -> None:
    """Print the summary of a saved result and draw its figures next to it."""
    from lens_bias.figures.circuits import save_figures

    print(summarize(result), "wrote " + str(path), sep="\n")
    print("wrote", *save_figures(result, Path(path).with_suffix(""), png=config.png))


def main(argv: list[str] | None = None) -> Result:
    return cli.main(Config, argv, description=__doc__, quick=QUICK, result_name="circuits", run=run, report=report)


if __name__ == "__main__":
    cli.run(main)
