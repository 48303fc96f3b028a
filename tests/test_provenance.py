"""Tests of lens_bias.provenance: provenance keys and git state, strict-JSON conversion, and
Result save/load round trips including tensors and NaN."""

from __future__ import annotations

import dataclasses
import enum
import importlib.metadata
import json
import random
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from lens_bias.provenance import (
    Result,
    collect_provenance,
    git_state,
    set_seed,
    to_jsonable,
)
from lens_bias.stats import Estimate


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout.strip()


def test_collect_provenance_keys() -> None:
    record = {"name": "tiny", "sha256": "abc"}
    prov = collect_provenance(model_record=record, data={"set": "sha256:1"}, seed=7)
    assert set(prov) == {
        "lens_bias_version",
        "git",
        "packages",
        "python",
        "platform",
        "torch_threads",
        "torch_build",
        "timestamp_utc",
        "model",
        "data",
        "seed",
    }
    assert prov["model"] == record and prov["data"] == {"set": "sha256:1"} and prov["seed"] == 7
    assert prov["packages"]["torch"] == importlib.metadata.version("torch")  # "2.13.0" for PyPI's CUDA build
    assert prov["torch_build"] == {
        "version": torch.__version__,
        "cuda": torch.version.cuda,
        "device": None,
        "gpu": None,
    }
    assert prov["packages"]["numpy"] == np.__version__
    assert set(prov["packages"]) == {"torch", "transformer_lens", "transformers", "datasets", "numpy"}
    assert prov["torch_threads"] == torch.get_num_threads()
    assert prov["timestamp_utc"].endswith("+00:00")
    assert prov["git"] is None or set(prov["git"]) == {"commit", "dirty"}
    json.dumps(to_jsonable(prov), allow_nan=False)
    assert collect_provenance(model_record=None)["data"] == {}


@pytest.mark.parametrize("cuda", [None, "13.0"])
def test_provenance_records_the_torch_build_and_device(monkeypatch: pytest.MonkeyPatch, cuda: str | None) -> None:
    """The distribution version of PyPI's CUDA wheel is "2.13.0", its torch.__version__ "2.13.0+cu130": the build
    (CPU or which CUDA) and the device are recorded apart from the package version, on either build."""
    version = "2.13.0+cu130" if cuda else "2.13.0+cpu"
    monkeypatch.setattr(torch, "__version__", version)
    monkeypatch.setattr(torch.version, "cuda", cuda)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: f"GPU of {device}")
    device = "cuda:0" if cuda else "cpu"
    build = collect_provenance(model_record={"name": "tiny", "device": device})["torch_build"]
    assert build == {"version": version, "cuda": cuda, "device": device, "gpu": "GPU of cuda:0" if cuda else None}


def test_git_state_in_a_fresh_repository(tmp_path: Path) -> None:
    assert git_state(tmp_path) is None  # not a checkout
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    assert git_state(repo) == {"commit": None, "dirty": False}  # no commits yet
    (repo / "a.txt").write_text("one\n")
    _git(repo, "add", "a.txt")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "init")
    head = _git(repo, "rev-parse", "HEAD")
    (repo / "sub").mkdir()
    assert git_state(repo / "sub") == {"commit": head, "dirty": False}
    (repo / "untracked.txt").write_text("x")
    assert git_state(repo)["dirty"] is False  # untracked files do not count
    (repo / "a.txt").write_text("two\n")
    assert git_state(repo) == {"commit": head, "dirty": True}


def test_git_state_without_git(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no git executable reachable
    assert git_state(tmp_path) is None


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Plain:
    a: int
    b: tuple[float, ...]


def test_to_jsonable_conversions() -> None:
    obj = {
        "nan": float("nan"),
        "inf": np.float32("inf"),
        "np_int": np.int64(3),
        "np_bool": np.bool_(True),
        "array": np.array([[1.0, np.nan]]),
        "tensor_scalar": torch.tensor(2.5),
        "tensor": torch.tensor([1, 2]),
        "tuple": (1, "a"),
        "set": {2, 1},
        "path": Path("/tmp/x"),
        "estimate": Estimate(0.5, 0.4, 0.6, 10),
        "plain": Plain(1, (2.0,)),
        "enum": Colour.RED,
        4: "int key",
    }
    out = to_jsonable(obj)
    assert out == {
        "nan": None,
        "inf": None,
        "np_int": 3,
        "np_bool": True,
        "array": [[1.0, None]],
        "tensor_scalar": 2.5,
        "tensor": [1, 2],
        "tuple": [1, "a"],
        "set": [1, 2],
        "path": "/tmp/x",
        "estimate": {"value": 0.5, "low": 0.4, "high": 0.6, "n": 10, "level": 0.95},
        "plain": {"a": 1, "b": [2.0]},
        "enum": "red",
        "4": "int key",
    }
    assert type(out["np_int"]) is int and type(out["np_bool"]) is bool
    json.dumps(out, allow_nan=False)
    with pytest.raises(TypeError, match=r"obj\['bad'\]\[0\]: cannot convert object"):
        to_jsonable({"bad": [object()]})


def test_result_round_trip(tmp_path: Path) -> None:
    tensors = {
        "acts": torch.randn(3, 2, 4),
        "ids": torch.arange(5, dtype=torch.int64),
        "half": torch.randn(2, 3, dtype=torch.bfloat16).t(),  # non-contiguous view
    }
    tensors["acts_view"] = tensors["acts"][1]  # shares storage with "acts"
    result = Result(
        name="demo",
        values={"bias": Estimate(0.62, 0.55, 0.69, 120), "undefined": float("nan"), "k": (1, 2)},
        config={"layers": np.arange(3), "out": Path("figures")},
        provenance=collect_provenance(model_record={"name": "tiny"}, seed=0),
        tensors=tensors,
    )
    json_path = result.save(tmp_path / "res" / "demo.v1")
    assert json_path == tmp_path / "res" / "demo.v1.json"
    assert (tmp_path / "res" / "demo.v1.safetensors").exists()
    document = json.loads(json_path.read_text())
    assert document["values"]["undefined"] is None
    assert document["tensors"]["acts"] == {"shape": [3, 2, 4], "dtype": "float32"}

    for path in (json_path, tmp_path / "res" / "demo.v1"):
        loaded = Result.load(path)
        assert loaded.name == "demo"
        assert loaded.values == {
            "bias": {"value": 0.62, "low": 0.55, "high": 0.69, "n": 120, "level": 0.95},
            "undefined": None,
            "k": [1, 2],
        }
        assert Estimate.from_dict(loaded.values["bias"]) == result.values["bias"]
        assert loaded.config == {"layers": [0, 1, 2], "out": "figures"}
        assert loaded.provenance == to_jsonable(result.provenance)
        assert set(loaded.tensors) == set(tensors)
        for key, tensor in tensors.items():
            assert loaded.tensors[key].dtype == tensor.dtype
            assert torch.equal(loaded.tensors[key], tensor)


def test_result_without_tensors(tmp_path: Path) -> None:
    Result("r", {"x": 1}, {}, {}).save(tmp_path / "r")
    assert not (tmp_path / "r.safetensors").exists()
    assert Result.load(tmp_path / "r.json") == Result("r", {"x": 1}, {}, {})
    (tmp_path / "other.json").write_text('{"name": "x"}')
    with pytest.raises(ValueError, match=r"not a lens_bias.Result"):
        Result.load(tmp_path / "other")


def test_result_items_as_parquet_csv_and_a_frame(tmp_path: Path) -> None:
    import pandas as pd

    items = [
        {"score": 0.5, "item_id": "a", "text": 'x, "y"', "group": "g", "condition": "baseline"},
        {"score": float("nan"), "item_id": "b", "text": "z", "group": "g", "condition": "steer"},
    ]
    Result("r", {}, {}, {}, items=items).save(tmp_path / "r")
    loaded = Result.load(tmp_path / "r")
    frame = loaded.to_frame()
    assert list(frame.columns) == ["item_id", "text", "group", "condition", "score"]  # the id columns first
    assert frame["item_id"].tolist() == ["a", "b"] and frame["score"].isna().tolist() == [False, True]
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "r.items.parquet"), frame)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "r.items.csv"), frame)
    assert json.loads((tmp_path / "r.json").read_text())["items"]["n_rows"] == 2
    assert Result("r", {}, {}, {}).to_frame().empty and not (tmp_path / "none.items.csv").exists()


def _interrupt_midway(real_write):
    """A writer that writes part of its file and then is interrupted (as by Ctrl-C)."""

    def write(data, path, *args, **kwargs):
        real_write(data, path, *args, **kwargs)
        Path(path).write_bytes(Path(path).read_bytes()[:40])
        raise KeyboardInterrupt

    return write


def _saved(tmp_path: Path, tag: float) -> Result:
    return Result("r", {"tag": tag}, {}, {}, tensors={"x": torch.full((100,), tag)})


@pytest.mark.parametrize("writer", ["tensors", "json"])
def test_an_interrupted_save_leaves_the_previous_result_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer: str
) -> None:
    import lens_bias.provenance as provenance

    _saved(tmp_path, 1.0).save(tmp_path / "r")
    if writer == "tensors":
        monkeypatch.setattr(provenance, "save_file", _interrupt_midway(provenance.save_file))
    else:
        real_write_text = Path.write_text
        monkeypatch.setattr(
            Path,
            "write_text",
            lambda self, text, **kw: _interrupt_midway(lambda t, p: real_write_text(Path(p), t, **kw))(text, self),
        )
    with pytest.raises(KeyboardInterrupt):
        _saved(tmp_path, 2.0).save(tmp_path / "r")
    monkeypatch.undo()
    loaded = Result.load(tmp_path / "r")
    assert loaded.values == {"tag": 1.0} and torch.equal(loaded.tensors["x"], torch.full((100,), 1.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "r.safetensors"]
    with pytest.raises(KeyboardInterrupt), monkeypatch.context() as patch:
        patch.setattr(provenance, "save_file", _interrupt_midway(provenance.save_file))
        _saved(tmp_path, 3.0).save(tmp_path / "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "r.safetensors"]


def test_tensors_of_another_save_are_refused(tmp_path: Path) -> None:
    """A JSON and a safetensors file of two different saves (e.g. copied by hand) do not load as one result."""
    _saved(tmp_path / "a", 1.0).save(tmp_path / "a" / "r")
    _saved(tmp_path / "b", 2.0).save(tmp_path / "b" / "r")
    (tmp_path / "a" / "r.safetensors").write_bytes((tmp_path / "b" / "r.safetensors").read_bytes())
    with pytest.raises(ValueError, match=r"r.safetensors was not written with .*r.json"):
        Result.load(tmp_path / "a" / "r")


def test_set_seed_reproducible() -> None:
    set_seed(123)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    set_seed(123)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first


@pytest.mark.fault
def test_a_full_disk_while_saving_leaves_the_previous_result_whole(tmp_path, monkeypatch):
    import errno

    from lens_bias import provenance

    old = Result("demo", {"n": 1}, {}, {}, {"t": torch.zeros(3)}).save(tmp_path / "demo")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def full_disk(tensors, path, metadata):
        Path(path).write_bytes(b"\x00" * 10)  # a part written, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(provenance, "save_file", full_disk)
    with pytest.raises(OSError, match="No space left on device"):
        Result("demo", {"n": 2}, {}, {}, {"t": torch.ones(3)}).save(tmp_path / "demo")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert Result.load(old).values == {"n": 1}
