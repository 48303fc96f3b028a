"""One save format and one registry: every intervention kind round-trips through save/load; unknown kinds and
unregistered classes are clear errors."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from lens_bias.circuits.ablation import EdgeAblation
from lens_bias.directions import SteeringVector, Subspace
from lens_bias.errors import InputError
from lens_bias.interventions import (
    INTERVENTION_KINDS,
    AddVector,
    HeadScaling,
    ProjectOut,
    SubspaceEdit,
    load_intervention,
    register,
    save_intervention,
)
from lens_bias.provenance import Result


def _vector() -> SteeringVector:
    directions = torch.randn(2, 8, generator=torch.Generator().manual_seed(0))
    return SteeringVector("v", (1, 3), directions, torch.tensor([2.0, 5.0]), "resid_pre", {"dataset": "test"})


def test_every_kind_is_registered_under_its_description_kind():
    vector = _vector()
    subspace = Subspace({1: torch.eye(8)[:2], 3: torch.eye(8)[:1]}, "resid_post", 0.9, {"source": "test"})
    examples = [
        HeadScaling(((0, 1),), 0.5),
        AddVector(vector, 2.0, [3], start=None),
        ProjectOut(vector),
        SubspaceEdit(subspace, "remove", [3]),
        EdgeAblation(torch.tensor([[0, 1]]), torch.zeros(3, 8)),  # registered by lens_bias.circuits
    ]
    assert {example.describe()["kind"]: type(example) for example in examples} == INTERVENTION_KINDS


def test_round_trips_keep_the_description_and_the_tensors(tmp_path):
    vector = _vector()
    add = AddVector(vector, 2.0, [3], start=None)
    loaded = load_intervention(save_intervention(add, tmp_path / "add", provenance={"seed": 0}))
    assert isinstance(loaded, AddVector) and loaded.describe() == add.describe()
    assert torch.equal(loaded.vector.directions, vector.directions) and loaded.vector.provenance == {"dataset": "test"}
    assert Result.load(tmp_path / "add.json").provenance == {"seed": 0}

    project = load_intervention(save_intervention(ProjectOut(vector), tmp_path / "project", provenance={}))
    assert isinstance(project, ProjectOut) and project.describe() == ProjectOut(vector).describe()
    assert torch.equal(project.vector.residual_norms, vector.residual_norms) and project.vector.hook == "resid_pre"

    subspace = Subspace({1: torch.eye(8)[:2], 3: torch.eye(8)[:1]}, "resid_post", 0.9, {"source": "test"})
    for layers in (None, [3]):
        edit = SubspaceEdit(subspace, "boost", layers)
        back = load_intervention(save_intervention(edit, tmp_path / "edit", provenance={}))
        assert isinstance(back, SubspaceEdit) and back.describe() == edit.describe() and back.layers == layers
        assert all(torch.equal(back.subspace.bases[layer], basis) for layer, basis in subspace.bases.items())

    scaling = HeadScaling(((2, 1), (0, 3)), 0.0)
    path = save_intervention(scaling, tmp_path / "heads", provenance={})
    assert load_intervention(path) == scaling
    assert not (tmp_path / "heads.safetensors").exists()  # a head scaling is its description
    assert json.loads(path.read_text())["config"] == {"intervention": scaling.describe()}


def test_unknown_kinds_and_unregistered_classes_are_clear_errors(tmp_path):
    Result("x", values={}, config={"intervention": {"kind": "mystery"}}, provenance={}).save(tmp_path / "x")
    with pytest.raises(ValueError, match="known saved intervention"):
        load_intervention(tmp_path / "x.json")

    @dataclass
    class Unregistered:
        def hooks(self, model, context):
            return []

        def describe(self):
            return {"kind": "unregistered"}

    with pytest.raises(ValueError, match="not a registered intervention"):
        save_intervention(Unregistered(), tmp_path / "u", provenance={})
    with pytest.raises(ValueError, match="already registered"):
        register("add_vector")(Unregistered)


def test_an_interrupted_save_leaves_the_previously_saved_intervention(tmp_path, monkeypatch):
    import lens_bias.provenance

    first = AddVector(_vector(), 2.0, [3], start=None)
    path = save_intervention(first, tmp_path / "add", provenance={})

    def interrupted(tensors, filename, *args, **kwargs):
        Path(filename).write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(lens_bias.provenance, "save_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_intervention(AddVector(_vector() * 3.0, 5.0, [1], start=None), tmp_path / "add", provenance={})
    loaded = load_intervention(path)
    assert loaded.describe() == first.describe() and torch.equal(loaded.vector.directions, first.vector.directions)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["add.json", "add.safetensors"]


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def _drop_vector(path: Path) -> None:
    document = json.loads(path.read_text())
    document["tensors"] = {}
    del document["save_id"]
    path.write_text(json.dumps(document))
    path.with_suffix(".safetensors").unlink()


@pytest.mark.fault
@pytest.mark.parametrize(
    "damage, given",
    [
        (_truncate, "add.json"),
        (lambda path: path.write_text(""), "add.json"),
        (lambda path: path.write_bytes(bytes(range(256)) * 4), "add.json"),
        (lambda path: path.write_text("[1, 2]"), "add.json"),
        (_drop_vector, "add.json"),
        (lambda path: _truncate(path.with_suffix(".safetensors")), "add.json"),
        (lambda path: path.with_suffix(".safetensors").write_bytes(b"\x00" * 64), "add"),
        (lambda path: (path.parent / "vectors.csv").write_text("layer,value\n1,2\n"), "vectors.csv"),
    ],
    ids=["truncated", "empty", "binary", "json-list", "no-vector", "truncated-tensors", "zeroed-tensors", "csv"],
)
def test_a_damaged_or_foreign_intervention_file_is_one_input_error_naming_it(tmp_path, damage, given):
    path = save_intervention(AddVector(_vector(), 2.0, [3], start=None), tmp_path / "add", provenance={})
    damage(path)
    with pytest.raises(InputError, match=re.escape(str(tmp_path / given))) as raised:
        load_intervention(tmp_path / given)
    assert "\n" not in str(raised.value)
