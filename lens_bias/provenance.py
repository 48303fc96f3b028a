"""Provenance and saved results.

* ``collect_provenance`` records what produced a result: package versions, git state of the
  lens_bias checkout, interpreter and platform, torch threads and build (CPU or CUDA) and the device,
  UTC time, the model record, data fingerprints and the seed.
* ``Result`` is what every experiment saves: ``{stem}.json`` (name, values, config, provenance, and
  the names/shapes/dtypes of the tensors) plus ``{stem}.safetensors`` when there are tensors. Both are
  written atomically, the tensors first and the JSON last, and carry one save id: an interrupted save
  leaves the previous result (or none), and a JSON never loads with another save's tensors.
* A Result's ``items`` are its per-item rows (one dict per row: :data:`ITEM_COLUMNS` first, then each
  score), written beside the JSON as ``{stem}.items.parquet`` and ``{stem}.items.csv`` and read back as a
  pandas DataFrame by :meth:`Result.to_frame` (or ``pandas.read_parquet`` / ``read_csv`` directly).
* ``to_jsonable`` is the single conversion to strict JSON used for everything saved.

JSON convention: output is strict JSON (``allow_nan=False``), so non-finite floats (NaN, +inf,
-inf) are written as ``null`` and read back as ``None``. A value that may be NaN should therefore
be read with ``x is None`` (or ``Estimate.from_dict``, which maps ``None`` back to NaN).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import importlib.metadata
import json
import math
import os
import platform
import random
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from lens_bias.errors import InputError
from lens_bias.files import atomic_path

RESULT_FORMAT = "lens_bias.Result/1"
"""Tag written into every saved Result JSON (bump when the layout changes)."""

#: The leading columns of every per-item table: which item (its id and text), its group, under which condition.
ITEM_COLUMNS = ("item_id", "text", "group", "condition")

_PACKAGES = ("torch", "transformer_lens", "transformers", "datasets", "numpy")
_GIT_TIMEOUT_S = 5.0


def package_version(name: str) -> str | None:
    """Installed version of a distribution (e.g. ``"transformer_lens"``), or None if absent."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git(directory: Path, *args: str) -> str | None:
    """stdout of ``git -C directory args`` (stripped), or None on any failure or timeout."""
    try:
        proc = subprocess.run(
            ["git", "-C", str(directory), *args],
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def git_state(directory: str | Path) -> dict[str, Any] | None:
    """Git state of the checkout containing ``directory``.

    Returns None if ``directory`` is not inside a git work tree (or git is unavailable), else
    ``{"commit": <40-hex HEAD or None if there are no commits yet>, "dirty": bool}``. ``dirty``
    follows ``git describe --dirty``: uncommitted changes to tracked files (staged or not);
    untracked files do not count. Never raises.
    """
    directory = Path(directory)
    if _git(directory, "rev-parse", "--is-inside-work-tree") != "true":
        return None
    status = _git(directory, "status", "--porcelain", "--untracked-files=no")
    return {
        "commit": _git(directory, "rev-parse", "--verify", "--quiet", "HEAD^{commit}"),
        "dirty": None if status is None else bool(status),
    }


def collect_provenance(
    *,
    model_record: dict[str, Any] | None,
    data: dict[str, str] | None = None,
    seed: int | None = None,
) -> dict[str, Any]:
    """Everything needed to say what produced a result.

    Args:
        model_record: how the model was made (source, revision/file hash, dtype, weight
            processing), stored as given; None for results that involve no model.
        data: fingerprints of the data used, name -> hash, e.g.
            ``{"stereoset_dev": "sha256:…"}``.
        seed: the seed the run was started with.

    Returns:
        Dict with keys ``lens_bias_version``, ``git`` (see ``git_state``; None outside a git
        checkout), ``packages`` (name -> version or None), ``python``, ``platform``,
        ``torch_threads``, ``torch_build`` (see :func:`torch_build`), ``timestamp_utc`` (ISO 8601,
        seconds), ``model``, ``data``, ``seed``.
    """
    device = model_record.get("device") if model_record is not None else None
    return {
        "lens_bias_version": package_version("lens_bias") or "0+unknown",
        "git": git_state(Path(__file__).resolve().parent),
        "packages": {name: package_version(name) for name in _PACKAGES},
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch_threads": torch.get_num_threads(),
        "torch_build": torch_build(device),
        "timestamp_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "model": model_record,
        "data": dict(data) if data is not None else {},
        "seed": seed,
    }


def torch_build(device: str | None) -> dict[str, Any]:
    """Which torch build ran, on what: ``version`` (``torch.__version__``, e.g. ``"2.13.0+cpu"`` or
    ``"2.13.0+cu130"``: the distribution version in ``packages`` lacks the ``+cu130`` of PyPI's CUDA wheel),
    ``cuda`` (the CUDA version torch was built with; None for a CPU build), ``device`` (as given, e.g. the
    model record's ``"cuda"``; None when unknown) and ``gpu`` (the GPU's name on a CUDA device, else None)."""
    on_gpu = device is not None and str(device).startswith("cuda")
    return {
        "version": torch.__version__,
        "cuda": torch.version.cuda,
        "device": device,
        "gpu": torch.cuda.get_device_name(device) if on_gpu else None,
    }


def set_seed(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and, if present, CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def to_jsonable(obj: Any) -> Any:
    """Convert ``obj`` recursively to plain, strict-JSON-serialisable Python.

    * ``None``, ``bool``, ``str``, ``int`` pass through; finite floats pass through, non-finite
      floats (NaN, ±inf) become ``None``.
    * NumPy scalars and arrays, torch tensors (any shape; scalars become numbers) become numbers
      or nested lists.
    * Dataclasses use their ``to_dict()`` if they have one (e.g. ``Estimate``), else
      ``dataclasses.asdict``; mappings become dicts with ``str`` keys; lists, tuples and sets
      become lists (sets sorted by ``repr`` for a stable order); ``Path`` becomes ``str``; ``Enum``
      becomes its value.

    Raises:
        TypeError: for any other type, naming the type and where in ``obj`` it was found.
    """
    return _to_jsonable(obj, "obj")


def _to_jsonable(obj: Any, where: str) -> Any:
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, torch.Tensor):
        obj = obj.detach().cpu()
        return _to_jsonable(obj.item() if obj.ndim == 0 else obj.tolist(), where)
    if isinstance(obj, np.ndarray):
        return _to_jsonable(obj.tolist(), where)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        to_dict = getattr(obj, "to_dict", None)
        return _to_jsonable(to_dict() if callable(to_dict) else dataclasses.asdict(obj), where)
    if isinstance(obj, dict):
        return {str(k): _to_jsonable(v, f"{where}[{k!r}]") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_jsonable(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, (set, frozenset)):
        return [_to_jsonable(v, f"{where}{{…}}") for v in sorted(obj, key=repr)]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, enum.Enum):
        return _to_jsonable(obj.value, where)
    raise TypeError(f"{where}: cannot convert {type(obj).__name__} to JSON")


def _load_tensors(stem: Path, document: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The tensors the saved JSON ``document`` lists, from ``{stem}.safetensors``, checked to belong to it."""
    if not document["tensors"]:
        return {}
    tensors = load_file(f"{stem}.safetensors")
    if "save_id" in document:
        with safe_open(f"{stem}.safetensors", "pt") as handle:
            save_id = (handle.metadata() or {}).get("save_id")
        if save_id != document["save_id"]:
            raise InputError(
                f"{stem}.safetensors was not written with {stem}.json (another save's tensors): "
                "run the experiment again to write both."
            )
    missing = set(document["tensors"]) - set(tensors)
    if missing:
        raise InputError(f"{stem}.safetensors lacks tensors listed in the JSON: {sorted(missing)}")
    return tensors


def _stem(path: str | Path) -> Path:
    """``x``, ``x.json`` or ``x.safetensors`` -> ``x`` (other dots are part of the stem)."""
    path = Path(path)
    return path.with_suffix("") if path.suffix in (".json", ".safetensors") else path


@dataclass
class Result:
    """Values of one analysis with its config and provenance, plus optional tensors.

    ``values`` and ``config`` hold anything ``to_jsonable`` accepts (e.g. ``Estimate`` objects,
    NumPy arrays); after ``load`` they are plain JSON data (an ``Estimate`` is a dict, NaN is
    ``None``). ``tensors`` are stored losslessly (dtype and shape kept) in safetensors. ``items``: the
    per-item rows (see the module docstring; :meth:`to_frame`).
    """

    name: str
    values: dict[str, Any]
    config: dict[str, Any]
    provenance: dict[str, Any]
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    items: list[dict[str, Any]] = field(default_factory=list)

    def to_frame(self) -> Any:
        """The per-item rows as a pandas DataFrame (:data:`ITEM_COLUMNS` first; empty when there are none). A
        column whose rows mix text with other values (measures of an audit that share a column name) holds text."""
        import pandas as pd

        frame = pd.DataFrame(self.items)
        for column in [c for c in frame.columns if frame[c].dtype == np.dtype("O")]:
            values = frame[column]
            if values.map(lambda v: isinstance(v, str)).any():
                frame[column] = values.map(lambda v: v if v is None or isinstance(v, (str, float)) else str(v))
        return frame[[*(c for c in ITEM_COLUMNS if c in frame), *(c for c in frame if c not in ITEM_COLUMNS)]]

    def save(self, path_stem: str | Path) -> Path:
        """Write ``{stem}.json`` and, if there are tensors, ``{stem}.safetensors``; creates parent
        directories. Returns the JSON path."""
        stem = _stem(path_stem)
        stem.parent.mkdir(parents=True, exist_ok=True)
        prepared: dict[str, torch.Tensor] = {}
        storages: set[int] = set()
        for key, tensor in self.tensors.items():
            if not isinstance(key, str) or not isinstance(tensor, torch.Tensor):
                raise TypeError(f"tensors must map str -> torch.Tensor, got {key!r}: {type(tensor).__name__}")
            t = tensor.detach().to("cpu").contiguous()
            ptr = t.untyped_storage().data_ptr()
            # safetensors refuses tensors sharing memory; give repeated storages their own copy
            prepared[key] = t.clone() if ptr in storages else t
            storages.add(ptr)
        document = {
            "format": RESULT_FORMAT,
            "name": self.name,
            "values": to_jsonable(self.values),
            "config": to_jsonable(self.config),
            "provenance": to_jsonable(self.provenance),
            "tensors": {
                k: {"shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch.")} for k, t in prepared.items()
            },
        }
        json_path, tensors_path = Path(f"{stem}.json"), Path(f"{stem}.safetensors")
        if prepared:
            document["save_id"] = uuid.uuid4().hex
        if self.items:
            frame = self.to_frame()
            document["items"] = {"n_rows": len(frame), "columns": [str(c) for c in frame.columns]}
            with atomic_path(f"{stem}.items.parquet") as parquet_tmp:
                frame.to_parquet(parquet_tmp, index=False)
            with atomic_path(f"{stem}.items.csv") as csv_tmp:
                frame.to_csv(csv_tmp, index=False)
        text = json.dumps(document, indent=2, allow_nan=False) + "\n"
        # both files are written to temporary files first; the tensors replace theirs, then the JSON
        # (on leaving the outer block): an interrupt leaves the previous pair, a JSON implies its tensors
        with atomic_path(json_path) as json_tmp:
            json_tmp.write_text(text, encoding="utf-8")
            if prepared:
                with atomic_path(tensors_path) as tensors_tmp:
                    save_file(prepared, tensors_tmp, metadata={"format": RESULT_FORMAT, "save_id": document["save_id"]})
        return json_path

    @classmethod
    def load(cls, path: str | Path) -> Result:
        """Read a Result saved by ``save``, given the JSON path or the stem. Tensors are loaded
        (on CPU) from ``{stem}.safetensors`` when the JSON lists any.

        Raises :class:`InputError` naming ``path`` for anything that is not an intact saved result: a missing or
        unreadable file, another kind of file (a CSV, binary data, a JSON list), a truncated or damaged JSON or
        tensor file, a JSON without its parts, tensors of another save or missing from the tensor file."""
        given = Path(path)
        stem = _stem(given)
        if given.suffix not in (".json", ".safetensors") and given.is_file():
            raise InputError(f"{given} is not a saved lens_bias result: give the .json file a run wrote.")
        try:
            document = json.loads(Path(f"{stem}.json").read_bytes().decode("utf-8"))
        except FileNotFoundError:
            raise InputError(f"{given}: no saved result there ({stem}.json does not exist).") from None
        except OSError as error:
            raise InputError(f"{given} cannot be read ({error.strerror or error}).") from None
        except ValueError as error:  # UnicodeDecodeError and json's errors
            raise InputError(
                f"{given} is not a saved lens_bias result: {stem}.json is not JSON text (truncated, binary or "
                f"another format: {type(error).__name__})."
            ) from None
        if not isinstance(document, dict) or document.get("format") != RESULT_FORMAT:
            found = f"format={document.get('format')!r}" if isinstance(document, dict) else "a JSON array or value"
            raise InputError(f"{given} is not a {RESULT_FORMAT} file ({found}).")
        parts = {"name": str, "values": dict, "config": dict, "provenance": dict, "tensors": dict}
        broken = [part for part, kind in parts.items() if not isinstance(document.get(part), kind)]
        if broken:
            raise InputError(f"{given} is a damaged {RESULT_FORMAT} file: {', '.join(broken)} missing or malformed.")
        try:
            tensors = _load_tensors(stem, document)
        except (OSError, SafetensorError) as error:
            raise InputError(
                f"{given}: its tensors {stem}.safetensors are missing or damaged ({' '.join(str(error).split())}); "
                "run the experiment again to write both files."
            ) from None
        items: list[dict[str, Any]] = []
        if "items" in document:
            import pandas as pd

            try:
                items = pd.read_parquet(f"{stem}.items.parquet").to_dict("records")
            except (OSError, ValueError) as error:  # missing, unreadable, or not Parquet (pyarrow's ArrowInvalid)
                raise InputError(
                    f"{given}: its per-item rows {stem}.items.parquet are missing or damaged ({type(error).__name__}); "
                    "run the experiment again."
                ) from None
            if len(items) != document["items"]["n_rows"]:
                raise InputError(f"{stem}.items.parquet was not written with {stem}.json: run the experiment again.")
        return cls(
            name=document["name"],
            values=document["values"],
            config=document["config"],
            provenance=document["provenance"],
            tensors={k: tensors[k] for k in document["tensors"]},
            items=items,
        )
