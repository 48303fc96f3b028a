"""Resumable work: finished cells of a long computation, saved one file each under a key of their config.

A long run (every chunk of a benchmark, every layer x multiplier of a sweep) is a list of *cells*. A
:class:`CellStore` keeps each finished cell's arrays in ``{folder}/{key}.safetensors``, where ``key`` is
the SHA-256 of the cell's full configuration in canonical JSON (:func:`lens_bias.cache.key_sha256`): whatever
changes the numbers (model record, intervention contents, data fingerprint, seed, the parameters of the
computation) must be in it. Rerunning after an interrupt loads the finished cells and computes the rest; changing a
parameter changes the keys of exactly the cells it affects.

Each cell is an artefact of :mod:`lens_bias.cache`: written atomically, with a record
``{key}.safetensors.cache.json`` beside it (the full configuration, the file's size and SHA-256). A cell is reused
only when its record holds this configuration and its bytes are the ones written: a cell file of another
configuration (renamed or copied to this key), a damaged one (zeroed tensors, a flipped bit, a truncation) or one
without a record is a warning and a recompute, never a reuse.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from lens_bias.cache import key_sha256, reuse, store
from lens_bias.data.records import fingerprint
from lens_bias.errors import InputError
from lens_bias.executors import Arrays, Compute, Executor, Serial
from lens_bias.files import writable_folder
from lens_bias.models import AnyModel, model_record
from lens_bias.provenance import to_jsonable


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


def model_key(model: AnyModel) -> dict[str, Any]:
    """What identifies a model in cell keys: its :class:`lens_bias.models.ModelRecord`; a model file known by
    its SHA-256 without its path (the same file elsewhere reuses the cells)."""
    record = model_record(model).to_dict()
    if record["sha256"] is not None:
        record.pop("source")
    return record


def record_arrays(record: dict[str, Any]) -> Arrays:
    """A JSON-ready record as cell arrays (its canonical JSON as UTF-8 bytes), for cells whose result is
    a record of estimates rather than arrays; :func:`arrays_record` reads it back."""
    text = json.dumps(to_jsonable(record), sort_keys=True, ensure_ascii=False)
    return {"record_json": np.frombuffer(text.encode("utf-8"), dtype=np.uint8).copy()}


def arrays_record(arrays: Arrays) -> dict[str, Any]:
    """The record :func:`record_arrays` stored."""
    return json.loads(np.asarray(arrays["record_json"], dtype=np.uint8).tobytes().decode("utf-8"))


class CellStore:
    """Finished cells under ``folder``, keyed by :func:`lens_bias.cache.key_sha256` of each cell's configuration.

    ``base`` is merged into every cell's configuration (put there what all cells share: model record,
    interventions, data fingerprint, seed). ``None`` as folder keeps nothing (every cell is computed).
    ``executor`` computes the unfinished cells (default :class:`lens_bias.executors.Serial`, this process);
    which executor ran a cell is not part of its key: every executor gives the same arrays.
    """

    def __init__(
        self, folder: str | Path | None, base: dict[str, Any] | None = None, *, executor: Executor | None = None
    ) -> None:
        self.folder = Path(folder) if folder is not None else None
        if self.folder is not None:
            writable_folder(self.folder, "the cells of this run")  # before any cell is computed
        self.base = dict(base or {})
        self.executor: Executor = executor if executor is not None else Serial()
        self.reused = 0
        self.computed = 0

    def config(self, cell: dict[str, Any]) -> dict[str, Any]:
        """The full configuration of ``cell``: the store's base and the cell's own entries."""
        overlap = set(cell) & set(self.base)
        if overlap:
            raise InputError(f"cell keys {sorted(overlap)} are already in the store's base configuration")
        return {**self.base, **cell}

    def key(self, cell: dict[str, Any]) -> str:
        """SHA-256 (hex) of the cell's full configuration: its file's name."""
        return key_sha256(self.config(cell))

    def path(self, cell: dict[str, Any]) -> Path | None:
        return None if self.folder is None else self.folder / f"{self.key(cell)}.safetensors"

    def get(self, cell: dict[str, Any]) -> Arrays | None:
        """The saved arrays of ``cell``; None when it is not finished, or (with a warning saying why) when its file
        belongs to another configuration, is damaged or has no record."""
        path = self.path(cell)
        if path is None:
            return None
        return reuse(path, self.config(cell), _read_arrays, what="sweep cell")

    def put(self, cell: dict[str, Any], arrays: Arrays) -> None:
        """Save ``cell``'s arrays atomically, with their record (no-op without a folder)."""
        path = self.path(cell)
        if path is None:
            return
        config = self.config(cell)
        tensors = {name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in arrays.items()}
        store(path, config, lambda staging: save_file(tensors, str(staging), metadata={"cell": _json(config)}))

    def map(
        self,
        cells: Sequence[dict[str, Any]],
        payloads: Sequence[Any],
        compute: Compute,
        *,
        model: AnyModel,
        desc: str,
        progress: bool = False,
    ) -> list[Arrays]:
        """The arrays of every cell, in order: finished ones loaded, the rest computed by the store's executor
        as ``compute(model, payload)`` (each saved the moment it finishes; cells with the same key are
        computed once). ``cells[i]`` is the configuration of ``payloads[i]``'s cell; ``compute`` must take
        the model as its argument (see :mod:`lens_bias.executors`)."""
        if len(cells) != len(payloads):
            raise InputError(f"{len(cells)} cell configurations for {len(payloads)} payloads.")
        keys = [self.key(cell) for cell in cells]
        found: dict[str, Arrays] = {}
        for key, cell in zip(keys, cells):
            arrays = found.get(key) or self.get(cell)
            if arrays is not None:
                found[key] = arrays
        todo = {key: i for i, key in enumerate(keys) if key not in found}  # first cell of each unfinished key
        self.reused += len(set(keys)) - len(todo)
        order = list(todo.items())

        def done(index: int, arrays: Arrays) -> None:
            key, i = order[index]
            found[key] = saved = {name: np.array(value) for name, value in arrays.items()}  # writable copies
            self.put(cells[i], saved)
            self.computed += 1

        if order:
            self.executor.map(model, compute, [payloads[i] for _, i in order], done, desc=desc, progress=progress)
        return [found[key] for key in keys]

    def map_chunks(
        self,
        items: Sequence[Any],
        chunk: int,
        cell: dict[str, Any],
        compute: Compute,
        *,
        model: AnyModel,
        desc: str,
        progress: bool = False,
    ) -> Arrays:
        """``compute(model, chunk of items)`` over ``items`` in chunks of ``chunk`` (each a cell: ``cell`` plus
        the chunk's item fingerprint); returns every array concatenated along its first axis."""
        if chunk < 1:
            raise InputError(f"chunk must be >= 1, got {chunk}.")
        parts = [items[start : start + chunk] for start in range(0, len(items), chunk)]
        cells = [{**cell, "items": fingerprint(part)} for part in parts]
        done = self.map(cells, parts, compute, model=model, desc=desc, progress=progress)
        return {name: np.concatenate([d[name] for d in done]) for name in done[0]} if done else {}


def _read_arrays(path: Path) -> Arrays:
    """The arrays of a cell file."""
    return {name: tensor.numpy() for name, tensor in load_file(str(path)).items()}


def _json(config: dict[str, Any]) -> str:
    """A cell's configuration as JSON, kept in its file's metadata (for a reader without the record)."""
    return json.dumps(to_jsonable(config))
