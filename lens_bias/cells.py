"""Resumable work: finished cells of a long computation, saved one file each under a key of their config.

A long run (every chunk of a benchmark, every layer x multiplier of a sweep) is a list of *cells*. A
:class:`CellStore` keeps each finished cell's arrays in ``{folder}/{key}.safetensors``, where ``key`` is
the SHA-256 of the cell's full configuration in canonical JSON: whatever changes the numbers (model
record, intervention contents, data fingerprint, seed, the parameters of the computation) must be in it.
Rerunning after an interrupt loads the finished cells and computes the rest; changing a parameter changes
the keys of exactly the cells it affects. Each cell is written atomically (:mod:`lens_bias.files`), so a
cell file that exists is complete.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from lens_bias.data.records import fingerprint
from lens_bias.errors import InputError
from lens_bias.files import atomic_path
from lens_bias.provenance import to_jsonable

Arrays = dict[str, np.ndarray]


def config_key(config: dict[str, Any]) -> str:
    """SHA-256 (hex) of ``config`` as canonical JSON (sorted keys; tensors and arrays as nested lists)."""
    text = json.dumps(to_jsonable(config), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def interventions_key(interventions: Sequence[Any]) -> list[dict[str, Any]]:
    """What identifies a list of interventions in a cell key: each one's ``describe()`` plus a hash of
    its tensors (``state()``), so two vectors with the same name but different values differ."""
    out = []
    for intervention in interventions:
        entry = dict(intervention.describe())
        state = getattr(intervention, "state", None)
        if state is not None:
            meta, tensors = state()
            digest = hashlib.sha256(json.dumps(to_jsonable(meta), sort_keys=True).encode("utf-8"))
            for name in sorted(tensors):
                tensor = tensors[name].detach().to("cpu", torch.float64).contiguous()
                digest.update(name.encode("utf-8"))
                digest.update(tensor.numpy().tobytes())
            entry["state_sha256"] = digest.hexdigest()
        out.append(entry)
    return out


class CellStore:
    """Finished cells under ``folder``, keyed by :func:`config_key` of each cell's configuration.

    ``base`` is merged into every cell's configuration (put there what all cells share: model record,
    interventions, data fingerprint, seed). ``None`` as folder keeps nothing (every cell is computed).
    """

    def __init__(self, folder: str | Path | None, base: dict[str, Any] | None = None) -> None:
        self.folder = Path(folder) if folder is not None else None
        self.base = dict(base or {})
        self.reused = 0
        self.computed = 0

    def key(self, cell: dict[str, Any]) -> str:
        overlap = set(cell) & set(self.base)
        if overlap:
            raise InputError(f"cell keys {sorted(overlap)} are already in the store's base configuration")
        return config_key({**self.base, **cell})

    def path(self, cell: dict[str, Any]) -> Path | None:
        return None if self.folder is None else self.folder / f"{self.key(cell)}.safetensors"

    def get(self, cell: dict[str, Any]) -> Arrays | None:
        """The saved arrays of ``cell``, or None when it is not finished (or its file is unreadable)."""
        path = self.path(cell)
        if path is None or not path.exists():
            return None
        try:
            return {name: tensor.numpy() for name, tensor in load_file(str(path)).items()}
        except (SafetensorError, OSError):
            return None

    def put(self, cell: dict[str, Any], arrays: Arrays) -> None:
        """Save ``cell``'s arrays atomically (no-op without a folder)."""
        path = self.path(cell)
        if path is None:
            return
        tensors = {name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in arrays.items()}
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata={"cell": json.dumps(to_jsonable({**self.base, **cell}))})

    def map_chunks(
        self,
        items: Sequence[Any],
        chunk: int,
        cell: dict[str, Any],
        compute: Callable[[Sequence[Any]], Arrays],
        *,
        desc: str,
        progress: bool = False,
    ) -> Arrays:
        """``compute`` over ``items`` in chunks of ``chunk`` (each a cell: ``cell`` plus the chunk's item
        fingerprint), with a progress bar; returns every array concatenated along its first axis."""
        if chunk < 1:
            raise InputError(f"chunk must be >= 1, got {chunk}.")
        parts = []
        for start in tqdm(range(0, len(items), chunk), desc=desc, disable=not progress, unit="chunk"):
            part = items[start : start + chunk]
            parts.append(self.get_or_compute({**cell, "items": fingerprint(part)}, partial(compute, part)))
        return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]} if parts else {}

    def get_or_compute(self, cell: dict[str, Any], compute: Callable[[], Arrays]) -> Arrays:
        """The saved arrays of ``cell`` if finished, else ``compute()`` saved and returned."""
        found = self.get(cell)
        if found is not None:
            self.reused += 1
            return found
        arrays = {name: np.asarray(value) for name, value in compute().items()}
        self.put(cell, arrays)
        self.computed += 1
        return arrays
