"""The resumable cell store: keys from the full configuration, atomic cells, and a cell that is not provably this
configuration's (another run's file under this key, damaged bytes, no record) recomputed with a warning."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from lens_bias.cache import key_sha256
from lens_bias.cells import CellStore, arrays_record, interventions_key, record_arrays
from lens_bias.directions import SteeringVector
from lens_bias.errors import InputError
from lens_bias.interventions import AddVector


def test_key_is_canonical_and_changes_with_any_value():
    assert key_sha256({"a": 1, "b": [1, 2]}) == key_sha256({"b": [1, 2], "a": 1})
    assert key_sha256({"a": 1}) != key_sha256({"a": 2})
    assert len(key_sha256({})) == 64


def test_cells_are_computed_once_then_reused(tmp_path):
    calls = []

    def compute(model, payload):
        calls.append(payload)
        return {"x": np.arange(3.0), "flag": np.array([True, False, True])}

    store = CellStore(tmp_path, {"model": "m", "seed": 0})
    (first,) = store.map([{"chunk": 0}], [0], compute, model=None, desc="x")
    again = CellStore(tmp_path, {"model": "m", "seed": 0})
    (second,) = again.map([{"chunk": 0}], [0], compute, model=None, desc="x")
    assert len(calls) == 1 and again.reused == 1 and again.computed == 0
    for name in first:
        assert np.array_equal(first[name], second[name]) and first[name].dtype == second[name].dtype
    # another seed is another cell
    CellStore(tmp_path, {"model": "m", "seed": 1}).map([{"chunk": 0}], [0], compute, model=None, desc="x")
    assert len(calls) == 2
    assert not list(tmp_path.glob("*.tmp")), "no temporary file is left behind"


@pytest.mark.fault
def test_a_damaged_cell_is_recomputed(tmp_path):
    store = CellStore(tmp_path)
    store.put({"chunk": 0}, {"x": np.ones(4)})
    path = store.path({"chunk": 0})
    assert path is not None
    path.write_bytes(path.read_bytes()[:20])  # truncated
    with pytest.warns(UserWarning, match="sweep cell .* is damaged"):
        assert store.get({"chunk": 0}) is None
    with pytest.warns(UserWarning, match="sweep cell"):
        (cell,) = store.map([{"chunk": 0}], [None], lambda model, _: {"x": np.zeros(4)}, model=None, desc="x")
    assert np.array_equal(cell["x"], np.zeros(4))


@pytest.mark.fault
def test_an_interrupted_compute_leaves_no_cell(tmp_path):
    store = CellStore(tmp_path)

    def interrupted(model, index):
        if index == 1:
            raise KeyboardInterrupt
        return {"x": np.full(2, index)}

    with pytest.raises(KeyboardInterrupt):
        store.map([{"chunk": 0}, {"chunk": 1}], [0, 1], interrupted, model=None, desc="x")
    assert store.get({"chunk": 1}) is None and store.get({"chunk": 0}) is not None, "the finished cell is kept"
    assert len(list(tmp_path.glob("*.safetensors"))) == 1 and not list(tmp_path.glob(".*.tmp")), "no temporary file"


def test_no_folder_keeps_nothing():
    store = CellStore(None)
    assert store.map([{"c": 1}], [None], lambda model, _: {"x": np.ones(1)}, model=None, desc="x")[0]["x"][0] == 1
    assert store.get({"c": 1}) is None


def test_cell_keys_may_not_shadow_the_base():
    with pytest.raises(InputError, match="already in the store's base"):
        CellStore(None, {"seed": 0}).key({"seed": 1})


def test_interventions_differing_only_in_values_have_different_keys():
    a = SteeringVector("v", (1,), torch.ones(1, 8), torch.ones(1))
    b = SteeringVector("v", (1,), torch.ones(1, 8) * 2, torch.ones(1))
    key_a, key_b = interventions_key([AddVector(a, 1.0)]), interventions_key([AddVector(b, 1.0)])
    assert key_a[0]["vector"] == key_b[0]["vector"] and key_sha256({"i": key_a}) != key_sha256({"i": key_b})
    assert interventions_key([AddVector(a, 1.0)]) == key_a


def test_map_chunks_concatenates_and_resumes_chunk_by_chunk(tmp_path):
    from lens_bias.data.crows_pairs import load_crows_pairs

    items = load_crows_pairs()[:5]
    seen = []

    def compute(model, chunk):
        seen.append(len(chunk))
        return {"id": np.array([int(item.id) for item in chunk])}

    out = CellStore(tmp_path).map_chunks(items, 2, {"measure": "ids"}, compute, model=None, desc="ids")
    assert out["id"].tolist() == [int(item.id) for item in items] and seen == [2, 2, 1]
    again = CellStore(tmp_path)
    resumed = again.map_chunks(items, 2, {"measure": "ids"}, compute, model=None, desc="ids")
    assert resumed["id"].tolist() == out["id"].tolist()
    assert again.reused == 3 and seen == [2, 2, 1]
    with pytest.raises(InputError, match="chunk must be >= 1"):
        again.map_chunks(items, 0, {}, compute, model=None, desc="ids")


def test_map_refuses_mismatched_payloads(tmp_path):
    with pytest.raises(InputError, match="2 cell configurations for 1 payloads"):
        CellStore(tmp_path).map([{"c": 0}, {"c": 1}], [0], lambda model, _: {}, model=None, desc="x")


def test_cells_with_the_same_key_are_computed_once(tmp_path):
    calls = []

    def compute(model, payload):
        calls.append(payload)
        return {"x": np.array([payload])}

    out = CellStore(None).map([{"c": 0}, {"c": 1}, {"c": 0}], [5, 6, 5], compute, model=None, desc="x")
    assert calls == [5, 6] and [o["x"][0] for o in out] == [5, 6, 5]


def test_a_record_survives_a_cell(tmp_path):
    record = {"value": 0.25, "items": [1, 2], "name": "é"}
    store = CellStore(tmp_path)
    store.put({"c": 0}, record_arrays(record))
    saved = store.get({"c": 0})
    assert saved is not None and arrays_record(saved) == record


def _zero_the_values(path):
    """Zero the tensor bytes at the end of a safetensors file (its size and header unchanged)."""
    data = bytearray(path.read_bytes())
    data[-32:] = bytes(32)
    path.write_bytes(bytes(data))


def _flip_a_bit(path):
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01
    path.write_bytes(bytes(data))


DAMAGE = {"values zeroed": _zero_the_values, "one bit flipped": _flip_a_bit}


@pytest.mark.fault
@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_cell_with_damaged_bytes_is_recomputed_not_reused(tmp_path, damage):
    """A cell file that still reads as safetensors, but not with the bytes that were written, is never reused."""
    store = CellStore(tmp_path, {"seed": 0})
    store.put({"chunk": 0}, {"x": np.arange(1.0, 5.0)})
    path = store.path({"chunk": 0})
    assert path is not None
    DAMAGE[damage](path)
    with pytest.warns(UserWarning, match=r"sweep cell .* is damaged .*SHA-256 mismatch"):
        (cell,) = store.map([{"chunk": 0}], [None], lambda model, _: {"x": np.arange(1.0, 5.0)}, model=None, desc="x")
    assert np.array_equal(cell["x"], np.arange(1.0, 5.0)) and store.computed == 1 and store.reused == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        assert np.array_equal(CellStore(tmp_path, {"seed": 0}).get({"chunk": 0})["x"], np.arange(1.0, 5.0))


@pytest.mark.fault
def test_another_configurations_cell_under_this_key_is_recomputed_not_reused(tmp_path):
    """A cell file (with its record) of another run, renamed to this configuration's key, is not this cell."""
    other, mine = CellStore(tmp_path, {"seed": 1}), CellStore(tmp_path, {"seed": 0})
    other.put({"chunk": 0}, {"x": np.full(3, 7.0)})
    source, target = other.path({"chunk": 0}), mine.path({"chunk": 0})
    assert source is not None and target is not None and source != target
    shutil.move(source, target)
    if Path(f"{source}.cache.json").exists():  # the record goes with it (an older store wrote none)
        shutil.move(f"{source}.cache.json", f"{target}.cache.json")
    with pytest.warns(UserWarning, match=r"sweep cell .* computed for another configuration \(it differs in seed\)"):
        (cell,) = mine.map([{"chunk": 0}], [None], lambda model, _: {"x": np.zeros(3)}, model=None, desc="x")
    assert np.array_equal(cell["x"], np.zeros(3)) and mine.computed == 1 and mine.reused == 0


@pytest.mark.fault
def test_a_cell_file_without_its_record_is_recomputed_not_reused(tmp_path):
    """A bare cell file under this key (copied in without its record, or written by an older lens_bias)."""
    other, mine = CellStore(tmp_path / "other", {"seed": 1}), CellStore(tmp_path / "mine", {"seed": 0})
    other.put({"chunk": 0}, {"x": np.full(3, 7.0)})
    source, target = other.path({"chunk": 0}), mine.path({"chunk": 0})
    assert source is not None and target is not None
    target.parent.mkdir(exist_ok=True)
    shutil.copy(source, target)
    with pytest.warns(UserWarning, match=r"sweep cell .* is incomplete \(no record"):
        (cell,) = mine.map([{"chunk": 0}], [None], lambda model, _: {"x": np.zeros(3)}, model=None, desc="x")
    assert np.array_equal(cell["x"], np.zeros(3)) and mine.computed == 1


@pytest.mark.fault
def test_a_cells_folder_that_cannot_be_written_is_refused_before_any_cell(tmp_path):
    (tmp_path / "cells").write_text("a file where the cells folder should be")
    with pytest.raises(InputError, match=r"cells .* is a file\. Pass another --out"):
        CellStore(tmp_path / "cells", {"model": "m"})
    with pytest.raises(InputError, match="is a file"):
        CellStore(tmp_path / "cells" / "sub", {"model": "m"})
