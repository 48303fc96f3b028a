"""A model folder's SHA-256: in the record of a folder model, hashed once per folder state, new when the folder
is retrained in place (so its cells are computed again, never reused)."""

from __future__ import annotations

import shutil

import pytest

import lens_bias.models.identity
from lens_bias.cells import model_key
from lens_bias.models import folder_sha256, load_model, model_record, resolve_model


@pytest.fixture
def folder(tiny_llama_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LENS_BIAS_CACHE", str(tmp_path / "cache"))
    return shutil.copytree(tiny_llama_dir, tmp_path / "model")


def _retrain_in_place(folder):
    """Change one weight of ``folder/model.safetensors`` as a fine-tune writing into the same folder would."""
    from safetensors.torch import load_file, save_file

    weights = load_file(str(folder / "model.safetensors"))
    name = sorted(weights)[0]
    weights[name] = weights[name] + 1.0
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})


def test_a_folder_record_has_the_sha256_of_its_weights(folder):
    record = model_record(load_model(str(folder), device="cpu"))
    assert record.kind == "hf-folder" and record.sha256 == folder_sha256(folder) and len(record.sha256) == 64
    assert resolve_model(folder).sha256 == record.sha256


def test_a_folder_retrained_in_place_gets_a_new_sha_and_new_cell_keys(folder):
    before = load_model(str(folder), device="cpu")
    _retrain_in_place(folder)
    after = load_model(str(folder), device="cpu")
    assert model_record(after).sha256 != model_record(before).sha256
    assert model_key(after) != model_key(before)


def test_an_unchanged_folder_is_hashed_once(folder, monkeypatch):
    hashed = []
    real = lens_bias.models.identity._hash_weights

    def counting(path):
        hashed.append(path)
        return real(path)

    monkeypatch.setattr(lens_bias.models.identity, "_hash_weights", counting)
    first = folder_sha256(folder)
    assert folder_sha256(folder) == first and len(hashed) == 1
    _retrain_in_place(folder)
    assert folder_sha256(folder) != first and len(hashed) == 2


def test_a_cache_that_cannot_be_written_still_hashes(folder, tmp_path, monkeypatch):
    blocker = tmp_path / "not a folder"
    blocker.write_text("x")
    monkeypatch.setenv("LENS_BIAS_CACHE", str(blocker))
    assert folder_sha256(folder) == folder_sha256(folder)
