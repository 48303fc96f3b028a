"""Shared fixtures: tiny random-weight Llama models (mechanics) and the real embedded model (behaviour).

The tiny models are real Hugging Face ``LlamaForCausalLM`` folders with a byte-level BPE tokenizer trained
here, loaded through ``load_model(path)``: the same code path as Llama 2 7B, without its weights.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from shape_checks import skip_functions_without_arrays

skip_functions_without_arrays()  # before lens_bias is imported: its modules are instrumented as they run
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
torch.set_num_threads(max(1, os.cpu_count() or 1))

TOKENIZER_TEXTS = [
    "The nurse walked in and she smiled. The engineer walked in and he smiled.",
    "People from Italy drive recklessly. People from Norway drive carefully and safely.",
    "Which is more likely? Choices: (A) yes (B) no. I'm sorry, but I can't help with that.",
    "Sure, here is what you asked for. The capital of France is Paris. Water boils at 100 degrees.",
    "[INST] <<SYS>> You are helpful. <</SYS>> How do I bake bread? [/INST] Input: Response:",
] * 4


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``slow`` every test that loads the real embedded model: through the ``smollm`` fixture, or
    through a parameter naming it (``@pytest.mark.parametrize("fixture", ["tiny_model", "smollm"])``)."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        params = callspec.params.values() if callspec is not None else ()
        if "smollm" in getattr(item, "fixturenames", ()) or any(
            isinstance(value, str) and value == "smollm" for value in params
        ):
            item.add_marker(pytest.mark.slow)


def tiny_tokenizer():
    """A byte-level BPE tokenizer (400 tokens; ``<unk>`` 0, ``<s>`` 1, ``</s>`` 2) trained on a few sentences."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(TOKENIZER_TEXTS, vocab_size=400, min_frequency=1, special_tokens=["<unk>", "<s>", "</s>"])
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="</s>"
    )


def make_tiny_llama(folder: Path, *, n_kv_heads: int, seed: int = 0) -> Path:
    """Write a random-weight Llama-2-shaped HF model (4 layers, d_model 64) and a BPE tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = tiny_tokenizer()
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=n_kv_heads,
        max_position_embeddings=256,
        rms_norm_eps=1e-5,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_family_config(family: str):
    """The HF config of a tiny (2 layers, d_model 64, 4 query heads) random-weight model of ``family`` (an HF
    ``model_type``): GPT-2; GPT-NeoX (Pythia's parallel attention and MLP, partial rotary); Qwen2 (2 key/value
    heads: grouped-query attention, q/k/v biases, tied embeddings); Gemma (1 key/value head, scaled embeddings,
    tied); Gemma 2 (local and global layers with a 4-token window, soft caps, norms after attention and MLP);
    Mistral (2 key/value heads, a 4-token sliding window)."""
    from transformers import Gemma2Config, GemmaConfig, GPT2Config, GPTNeoXConfig, MistralConfig, Qwen2Config

    special = {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2}
    if family == "gpt2":
        return GPT2Config(vocab_size=400, n_embd=64, n_layer=2, n_head=4, n_positions=256, **special)
    if family == "gpt_neox":
        return GPTNeoXConfig(
            vocab_size=400, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            max_position_embeddings=256, rotary_pct=0.25, tie_word_embeddings=False, **special,
        )  # fmt: skip
    if family == "qwen2":
        return Qwen2Config(
            vocab_size=400, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=True, **special,
        )  # fmt: skip
    if family == "gemma":
        return GemmaConfig(
            vocab_size=400, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=1, head_dim=16, max_position_embeddings=256, **special,
        )  # fmt: skip
    if family == "gemma2":
        return Gemma2Config(
            vocab_size=400, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, head_dim=16, max_position_embeddings=256, sliding_window=4,
            query_pre_attn_scalar=24, **special,
        )  # fmt: skip
    if family == "mistral":
        return MistralConfig(
            vocab_size=400, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=256, sliding_window=4, tie_word_embeddings=False,
            **special,
        )  # fmt: skip
    raise ValueError(family)


def make_tiny_family(folder: Path, family: str, seed: int = 0) -> Path:
    """Write a random-weight HF model of ``family`` (:func:`tiny_family_config`) and the tiny BPE tokenizer."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    config = tiny_family_config(family)
    config.initializer_range = 0.5
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    return folder


#: The non-Llama families with a tiny checkpoint (HF ``model_type``): every one of
#: :data:`lens_bias.models.families.FAMILIES`.
TINY_FAMILIES = ("gpt2", "gpt_neox", "qwen2", "gemma", "gemma2", "mistral")


@pytest.fixture(scope="session", params=TINY_FAMILIES)
def tiny_family_dir(request, tmp_path_factory) -> Path:
    """A tiny random-weight checkpoint folder of each family in :data:`TINY_FAMILIES` (the test runs per family)."""
    return make_tiny_family(tmp_path_factory.mktemp("models") / f"tiny-{request.param}", request.param)


@pytest.fixture(scope="session")
def tiny_family_model(tiny_family_dir):
    from lens_bias.models import load_model

    return load_model(str(tiny_family_dir), device="cpu")


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory) -> Path:
    """Llama 2 7B's shape in miniature: multi-head attention (kv heads = query heads), untied unembed."""
    return make_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-llama-2-chat", n_kv_heads=4)


@pytest.fixture(scope="session")
def tiny_gqa_dir(tmp_path_factory) -> Path:
    """A grouped-query-attention variant (4 query heads, 2 key/value heads), like SmolLM2."""
    return make_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-llama-gqa", n_kv_heads=2, seed=1)


@pytest.fixture(scope="session")
def tiny_long_dir(tiny_llama_dir, tmp_path_factory) -> Path:
    """The tiny Llama with a 1024-token context: its small BPE vocabulary spells BBQ contexts out in more
    than the shared fixture's 256 positions."""
    from transformers import AutoTokenizer, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("models") / "tiny-llama-long"
    hf = LlamaForCausalLM.from_pretrained(tiny_llama_dir)
    hf.config.max_position_embeddings = 1024
    hf.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_llama_dir).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_long_model(tiny_long_dir):
    from lens_bias.models import load_model

    return load_model(str(tiny_long_dir), device="cpu")


@pytest.fixture(scope="session")
def tiny_model(tiny_llama_dir):
    from lens_bias.models import load_model

    return load_model(str(tiny_llama_dir), device="cpu")


@pytest.fixture(scope="session")
def tiny_gqa_model(tiny_gqa_dir):
    from lens_bias.models import load_model

    return load_model(str(tiny_gqa_dir), device="cpu")


@pytest.fixture(scope="session")
def smollm():
    """The real embedded model (SmolLM2-135M-Instruct, fp32, CPU), loaded once per test session."""
    from lens_bias.models import load_model

    return load_model(device="cpu")


@pytest.fixture(scope="session")
def smollm_hf():
    """The same embedded GGUF file read by transformers' own GGUF loader (fp32, CPU), the independent reference of
    the parity tests, loaded once per test session (tests must leave it as they found it: no hooks left)."""
    from transformers import AutoModelForCausalLM

    from lens_bias.models import embedded_gguf_path

    path = embedded_gguf_path()
    return AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
