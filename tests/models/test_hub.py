"""Hugging Face hub ids through the local Hugging Face cache: a cached snapshot loads exactly as its folder does
(Llama 2's ids and every Llama-architecture id on the Llama path), the record names the id, the commit and the
weights' hash, and a model that is not cached is one clear error saying what to do. The hub is never reached: each
test builds the cache's layout (``hub/models--org--name/snapshots/<commit>/`` and ``refs/main``) in a tmp
``HF_HOME``."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest
import torch

from lens_bias.models import ModelLoadError, folder_sha256, load_model, model_record, resolve_model

MAIN = "1" * 40
OLDER = "2" * 40


def cache_model(hf_home: Path, repo_id: str, folder: Path, commit: str = MAIN, *, main: bool = True) -> Path:
    """Put ``folder`` into the Hugging Face cache under ``hf_home`` as ``repo_id`` at ``commit`` (the branch
    ``main`` pointing at it when ``main``); returns the snapshot folder."""
    repo = hf_home / "hub" / f"models--{repo_id.replace('/', '--')}"
    snapshot = shutil.copytree(folder, repo / "snapshots" / commit)
    if main:
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / "main").write_text(commit)
    return snapshot


@pytest.fixture
def hf_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


def _logits(model) -> torch.Tensor:
    ids = torch.tensor([model.tokenizer("The nurse said that she would", add_special_tokens=False).input_ids])
    with torch.inference_mode():
        return model(ids)


def test_a_cached_hub_id_loads_as_its_folder_with_id_commit_and_hash(hf_home, tiny_gqa_dir):
    snapshot = cache_model(hf_home, "HuggingFaceTB/SmolLM2-135M-Instruct", tiny_gqa_dir)
    model = load_model("HuggingFaceTB/SmolLM2-135M-Instruct", device="cpu")
    record = model_record(model)
    assert (record.kind, record.source, record.revision) == ("hf-hub", "HuggingFaceTB/SmolLM2-135M-Instruct", MAIN)
    assert record.sha256 == folder_sha256(snapshot) == folder_sha256(tiny_gqa_dir)
    assert model.cfg.original_architecture == "LlamaForCausalLM" and model.cfg.n_key_value_heads == 2
    assert torch.equal(_logits(model), _logits(load_model(str(tiny_gqa_dir), device="cpu")))


def test_llama_2_ids_and_names_take_the_llama_path_at_the_pinned_commit(hf_home, tiny_llama_dir, tiny_gqa_dir):
    cache_model(hf_home, "meta-llama/Llama-2-7b-chat-hf", tiny_llama_dir)
    cache_model(hf_home, "meta-llama/Llama-2-7b-chat-hf", tiny_gqa_dir, OLDER, main=False)
    for name in ("meta-llama/Llama-2-7b-chat-hf", "llama-2-7b-chat"):
        source = resolve_model(name)
        assert (source.kind, source.source, source.revision) == ("hf-hub", "meta-llama/Llama-2-7b-chat-hf", MAIN)
    model = load_model("meta-llama/Llama-2-7b-chat-hf", device="cpu")
    assert model.cfg.original_architecture == "LlamaForCausalLM" and model.cfg.n_key_value_heads is None
    pinned = load_model("llama-2-7b-chat", device="cpu", revision=OLDER)
    assert model_record(pinned).revision == OLDER and pinned.cfg.n_key_value_heads == 2


def test_a_transformer_lens_name_of_a_supported_family_loads_from_the_cache(hf_home, tiny_family_dir):
    """TransformerLens official names (``gpt2`` by its alias ``gpt2-small``, ``EleutherAI/pythia-14m``, ...) read
    from the cache through the family's own path."""
    from transformers import AutoConfig

    names = {
        "gpt2": "gpt2-small",
        "gpt_neox": "EleutherAI/pythia-14m",
        "qwen2": "Qwen/Qwen2-0.5B",
        "gemma": "google/gemma-2b",
        "gemma2": "google/gemma-2-2b",
        "mistral": "mistralai/Mistral-7B-v0.1",
    }
    official = names[AutoConfig.from_pretrained(tiny_family_dir).model_type]
    repo_id = "gpt2" if official == "gpt2-small" else official
    cache_model(hf_home, repo_id, tiny_family_dir)
    record = model_record(load_model(official, device="cpu"))
    assert (record.kind, record.source, record.revision) == ("hf-hub", repo_id, MAIN)


def test_a_model_not_in_the_cache_says_what_to_do(hf_home, monkeypatch):
    with pytest.raises(ModelLoadError, match=r"not in the local Hugging Face cache .*HF_HUB_OFFLINE.*hf download"):
        load_model("HuggingFaceTB/SmolLM2-135M-Instruct", device="cpu")
    with pytest.raises(ModelLoadError, match=r"at revision main2 .*HF_HOME"):
        load_model("HuggingFaceTB/SmolLM2-135M-Instruct", device="cpu", revision="main2")

    def no_network(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(socket.socket, "connect", no_network)
    with pytest.raises(ModelLoadError, match=r"could not be downloaded .*or pass the model's local folder"):
        load_model("HuggingFaceTB/SmolLM2-135M-Instruct", device="cpu")


def test_another_family_goes_to_transformer_lens_only_by_an_official_name(hf_home, tmp_path):
    """A cached GPT-Neo: its TransformerLens official name resolves to TransformerLens's own loader; the same
    architecture under another id is one error naming the supported families (both before any weights load)."""
    folder = tmp_path / "gpt-neo"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "gpt_neo", "architectures": ["GPTNeoForCausalLM"]}')
    cache_model(hf_home, "EleutherAI/gpt-neo-125M", folder)
    cache_model(hf_home, "someone/my-gpt-neo", folder)
    source = resolve_model("EleutherAI/gpt-neo-125M")
    assert (source.kind, source.source, source.sha256) == ("transformer-lens", "EleutherAI/gpt-neo-125M", None)
    with pytest.raises(ModelLoadError, match=r"someone/my-gpt-neo: model_type 'gpt_neo' .* llama, gpt2"):
        resolve_model("someone/my-gpt-neo")
