"""The flags every experiment shares, as frozen dataclasses: :class:`RunConfig` (``--model``, ``--device``,
``--dtype``, ``--seed``, ``--batch-size``, ``--out``, ``--no-png``) and :class:`SweepConfig` (where the cells of a sweep
run: ``--executor``, ``--address``, ``--workers``). An experiment's own config extends one of them; each field's
``metadata`` gives its ``help``, ``choices``, ``flag`` and ``min`` (checked before any work). Imports nothing heavy."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from lens_bias.embedded import EMBEDDED_MODEL
from lens_bias.errors import InputError

#: The ``--dtype`` choices: names of torch dtypes and ``bf16_mixed`` (bf16 matrix products, fp32 residual stream
#: and logits: lens_bias.models.precision). Which to use for what: README "Which dtype".
DTYPES = ("float32", "bfloat16", "float16", "bf16_mixed")


C = TypeVar("C", bound="RunConfig")


@dataclass(frozen=True)
class RunConfig:
    """The flags every experiment shares. Subclasses add their own fields (all with defaults and a ``help``) and
    may redeclare a field to change its default (e.g. ``out``, ``batch_size``)."""

    model: str = field(default=EMBEDDED_MODEL, metadata={"help": "model: name, hub id or path (see load_model)"})
    device: str | None = field(default=None, metadata={"help": "torch device (default: cuda if available, else cpu)"})
    dtype: str | None = field(
        default=None,
        metadata={
            "help": "weights' dtype (default: load_model's: float32, float16 for Llama 2 on a GPU); bf16_mixed: bf16 "
            "matrix products, fp32 residual stream and logits",
            "choices": DTYPES,
        },
    )
    seed: int = field(default=0, metadata={"help": "seed of every sample, split and bootstrap"})
    batch_size: int = field(default=32, metadata={"help": "rows per forward pass", "min": 1})
    out: Path = field(default=Path("figures"), metadata={"help": "output folder (results, figures)"})
    png: bool = field(default=True, metadata={"help": "write HTML figures only (no PNG)", "flag": "--no-png"})

    def __post_init__(self) -> None:
        if self.dtype is not None and self.dtype not in DTYPES:  # a config built directly (argparse checks flags)
            raise InputError(f"Unknown --dtype {self.dtype!r}: use one of {', '.join(DTYPES)}.")
        if self.seed is not None and not 0 <= self.seed < 2**32:  # numpy's and torch's seeds
            raise InputError(f"--seed must be in [0, 2**32), got {self.seed}.")
        for f in dataclasses.fields(self):
            value, minimum = getattr(self, f.name), metadata(type(self), f.name).get("min")
            if minimum is None or value is None:
                continue
            for v in value if isinstance(value, tuple) else (value,):
                if v < minimum:
                    raise InputError(f"--{f.name.replace('_', '-')} must be >= {minimum}, got {v}.")
        out = Path(self.out)
        for folder in (out, *out.parents):
            if folder.exists() and not folder.is_dir():
                raise InputError(f"--out {out}: {folder} is a file, not a folder; pass a folder path.")

    def to_dict(self) -> dict[str, Any]:
        """The config as plain JSON data (what the saved result records)."""
        from lens_bias.provenance import to_jsonable

        return to_jsonable({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})


@dataclass(frozen=True)
class SweepConfig(RunConfig):
    """The flags of an experiment whose long work is a sweep of resumable cells: where the cells run."""

    executor: str = field(
        default="serial",
        metadata={
            "help": "run the cells here (serial) or as tasks on a Ray cluster (ray)",
            "choices": ("serial", "ray"),
        },
    )
    address: str | None = field(
        default=None, metadata={"help": "Ray cluster address (e.g. auto); default: a local Ray instance"}
    )
    workers: int | None = field(
        default=None,
        metadata={"help": "Ray workers, each holding a model (default: one per GPU, else one per CPU core)", "min": 1},
    )

    def __post_init__(self) -> None:
        if self.executor != "ray" and (self.address is not None or self.workers is not None):
            raise InputError("--address and --workers need --executor ray.")
        super().__post_init__()


@dataclass(frozen=True)
class PairsConfig(RunConfig):
    """The flags of an experiment that takes contrast pairs: your own, from a table, instead of the built-in ones.
    Mix it in first (``class Config(PairsConfig, SweepConfig)``)."""

    pairs_file: Path | None = field(
        default=None,
        metadata={
            "help": "your own contrast pairs instead of the built-in ones: a CSV, JSONL, JSON or Parquet file with "
            "columns positive, negative, target (the split key), optional prompt, id, bias_type "
            "(lens_bias.data.tables; examples/pairs.csv)"
        },
    )
    columns: tuple[str, ...] = field(
        default=(), metadata={"help": "the table's column names, FIELD=COLUMN (e.g. positive=stereo target=group)"}
    )

    def __post_init__(self) -> None:
        if self.pairs_file is not None and not Path(self.pairs_file).is_file():
            raise InputError(f"--pairs-file {self.pairs_file}: no such file.")
        if self.columns and self.pairs_file is None and getattr(self, "bbq_file", None) is None:
            raise InputError("--columns maps the columns of --pairs-file: give the file too.")
        super().__post_init__()
        if self.pairs_file is not None:  # the table's columns and types, before any model loads
            from lens_bias.data.tables import load_pairs

            load_pairs(self.pairs_file, self.columns)


def metadata(config: type[RunConfig], name: str) -> dict[str, Any]:
    """The metadata of field ``name``, merged along the class hierarchy (a subclass's keys win)."""
    merged: dict[str, Any] = {}
    for cls in reversed(config.__mro__):
        for f in dataclasses.fields(cls) if dataclasses.is_dataclass(cls) else ():
            if f.name == name:
                merged.update(f.metadata)
    return merged
