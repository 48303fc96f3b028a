"""LoRA instruction fine-tuning on the tiny Llama: the prompt is masked, the loss goes down, only adapter weights
train, the merged folder reloads through load_model with the merged model's logits, the folder is written
atomically and reused; the rewrite scores against hand-made rewrites; one short run on the embedded model."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch

from lens_bias.debias.lora import (
    DEBIAS_INSTRUCTION,
    IGNORE,
    LLAMA_PROJECTIONS,
    MANIFEST,
    LoraRecipe,
    base_record,
    encode_example,
    finetune_lora,
    load_hf_model,
    rewrite_eval,
    rewrite_items,
    train_lora,
)
from lens_bias.debias.lora import evaluate as lora_evaluate
from lens_bias.debias.lora import train as lora_train
from lens_bias.debias.rewrites import RewritePair, load_rewrite_pairs
from lens_bias.errors import InputError
from lens_bias.forward.generation import Generation
from lens_bias.models import EMBEDDED_MODEL, ModelLoadError, load_model
from lens_bias.prompts import ChatTemplate, chat_batch

#: Small and fast on the tiny model: a short system prompt (its 400-token BPE spells text out), a high learning rate.
TINY = LoraRecipe(r=4, alpha=8, learning_rate=1e-2, system_prompt="Be fair.", max_length=160)


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: on a shared 2-core machine the tiny model's many small ops run ~50x slower on two."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def pairs():
    return load_rewrite_pairs()[:8]


def test_the_defaults_are_sr_llms_recipe():
    recipe = LoraRecipe()
    assert (recipe.r, recipe.alpha, recipe.dropout, recipe.learning_rate) == (64, 16, 0.2, 2e-4)
    assert (recipe.warmup_ratio, recipe.weight_decay, recipe.max_grad_norm) == (0.03, 0.001, 0.3)
    assert (recipe.batch_size, recipe.epochs, recipe.max_length) == (4, 1, 512)
    assert recipe.instruction == DEBIAS_INSTRUCTION == "Debias this text by rephrasing it to be free of bias:"
    assert recipe.target_modules == LLAMA_PROJECTIONS and "debiasing bot" in (recipe.system_prompt or "")
    assert recipe.user_message(" Men are bad drivers. ") == f"{DEBIAS_INSTRUCTION} Men are bad drivers."
    assert LoraRecipe.from_dict(recipe.to_dict()) == recipe
    with pytest.raises(InputError, match=r"invalid r=0, dropout=1\.0"):
        LoraRecipe(r=0, dropout=1.0)


@pytest.mark.parametrize("template", [ChatTemplate("llama-2-chat", "Be fair."), ChatTemplate("plain")])
def test_prompt_tokens_are_masked_and_tokenized_as_generation_does(tiny_model, template, pairs):
    tokenizer = tiny_model.tokenizer
    example = encode_example(tokenizer, template, TINY, pairs[0])
    prompt = chat_batch(tokenizer, template, [TINY.user_message(pairs[0].biased_text)])
    n_prompt = int(prompt.lengths[0])
    assert list(example.input_ids[:n_prompt]) == prompt.tokens[0, :n_prompt].tolist()
    assert example.labels[:n_prompt] == (IGNORE,) * n_prompt
    answer = example.labels[n_prompt:]
    assert answer == example.input_ids[n_prompt:] and answer[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(answer[:-1]).strip() == pairs[0].debiased_text
    assert not example.truncated


def test_long_examples_are_cut_and_a_too_long_prompt_is_refused(tiny_model, pairs):
    template = ChatTemplate("plain")
    full = encode_example(tiny_model.tokenizer, template, TINY, pairs[0])
    n_prompt = full.labels.count(IGNORE)
    cut = encode_example(tiny_model.tokenizer, template, LoraRecipe(max_length=n_prompt + 2), pairs[0])
    assert cut.truncated and cut.input_ids == full.input_ids[: n_prompt + 2]
    with pytest.raises(InputError, match=r"its prompt alone has \d+ tokens, max_length is 8"):
        encode_example(tiny_model.tokenizer, template, LoraRecipe(max_length=8), pairs[0])


def _trained(tiny_llama_dir, pairs, recipe, max_steps):
    hf_model, tokenizer = load_hf_model(base_record(tiny_llama_dir))
    before = {name: parameter.detach().clone() for name, parameter in hf_model.named_parameters()}
    template = ChatTemplate("llama-2-chat", recipe.system_prompt)
    examples = [encode_example(tokenizer, template, recipe, pair) for pair in pairs]
    model, losses = train_lora(hf_model, examples, recipe, tokenizer.eos_token_id, max_steps=max_steps, progress=False)
    return model, losses, before


def test_loss_goes_down_and_only_adapter_weights_change(tiny_llama_dir, pairs):
    recipe = LoraRecipe(r=4, alpha=8, dropout=0.0, learning_rate=1e-2, system_prompt="Be fair.", epochs=10)
    model, losses, before = _trained(tiny_llama_dir, pairs[:4], recipe, max_steps=None)
    assert len(losses) == 10  # 4 pairs, batch 4, 10 epochs
    # the tiny random model cannot get far below ln(vocab) = 6.0 (its unembedding is small and RMS-normed), but
    # the loss falls steadily
    assert losses[-1] < losses[0] - 0.3 and sum(losses[-3:]) < sum(losses[3:6]), losses
    trainable = {name for name, parameter in model.named_parameters() if parameter.requires_grad}
    assert trainable and all("lora_" in name for name in trainable)
    changed_adapters = 0
    for name, parameter in model.get_base_model().named_parameters():
        if "lora_" in name:
            changed_adapters += "lora_B" in name and bool(parameter.abs().sum() > 0)  # lora_B starts at zero
        else:
            assert torch.equal(parameter, before[name.replace(".base_layer", "")]), name
    assert changed_adapters == 4 * len(LLAMA_PROJECTIONS)  # every projection of the 4 layers


def test_the_merged_folder_reloads_with_the_merged_models_logits(tiny_llama_dir, pairs, tmp_path):
    recipe = LoraRecipe(r=4, alpha=8, learning_rate=1e-2, system_prompt="Be fair.", max_length=160)
    result = finetune_lora(tiny_llama_dir, pairs, recipe, tmp_path / "tuned", progress=False, max_steps=2)
    assert result.template == ChatTemplate("llama-2-chat", "Be fair.")  # the tiny model's folder is "...llama-2-chat"
    model, losses, _ = _trained(tiny_llama_dir, pairs, recipe, max_steps=2)  # the same run, seeded: the same weights
    assert losses == list(result.losses)
    merged = model.merge_and_unload()
    tokens = torch.tensor([[1, 5, 17, 42, 99, 7, 3]])
    with torch.no_grad():
        expected = merged(input_ids=tokens).logits
        base = load_hf_model(base_record(tiny_llama_dir))[0](input_ids=tokens).logits
    reloaded = load_model(result.folder, device="cpu")
    torch.testing.assert_close(reloaded(tokens), expected, atol=1e-4, rtol=1e-4)
    assert (expected - base).abs().max() > 1e-3  # the fine-tune changed the model


def test_the_folder_records_the_run_and_is_reused(tiny_llama_dir, pairs, tmp_path, monkeypatch):
    out = tmp_path / "tuned"
    result = finetune_lora(tiny_llama_dir, pairs, TINY, out, progress=False, max_steps=1)
    assert not result.reused and result.steps == len(result.losses) == 1 and result.n_pairs == 8
    assert {"config.json", "model.safetensors", "tokenizer.json", MANIFEST} <= {f.name for f in out.iterdir()}
    mask = os.umask(0)
    os.umask(mask)
    assert all(f.stat().st_mode & 0o777 == 0o666 & ~mask for f in out.iterdir())  # as open() makes files, not private
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["key"]["recipe"] == json.loads(json.dumps(TINY.to_dict()))
    assert manifest["key"]["base"]["kind"] == "hf-folder" and len(manifest["key"]["base"]["sha256"]) == 64
    assert manifest["details"]["n_truncated"] == 0 and manifest["provenance"]["seed"] == 0

    def no_training(*args, **kwargs):
        raise AssertionError("a saved fine-tune was trained again")

    monkeypatch.setattr(lora_train, "train_lora", no_training)
    again = finetune_lora(tiny_llama_dir, pairs, TINY, out, progress=False, max_steps=1)
    assert again.reused and again.losses == result.losses and again.template == result.template
    monkeypatch.undo()
    other = finetune_lora(tiny_llama_dir, pairs[:4], TINY, out, progress=False, max_steps=1)  # other data: retrained
    assert not other.reused and other.data != result.data and other.n_pairs == 4
    # the old folder replaced, nothing left aside
    assert sorted(f.name for f in tmp_path.iterdir()) == ["tuned", "tuned.cache.json"]


def test_an_interrupted_run_leaves_no_folder(tiny_llama_dir, pairs, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(lora_train, "collect_provenance", interrupted)  # after the weights are written
    with pytest.raises(KeyboardInterrupt):
        finetune_lora(tiny_llama_dir, pairs, TINY, tmp_path / "tuned", progress=False, max_steps=1)
    assert list(tmp_path.iterdir()) == []


def test_bad_input_is_refused_before_the_model_loads(tiny_llama_dir, pairs, tmp_path, monkeypatch):
    def loaded(*args, **kwargs):
        raise AssertionError("the model was loaded before the input was checked")

    monkeypatch.setattr(lora_train, "load_hf_model", loaded)
    with pytest.raises(InputError, match="the training set is empty"):
        finetune_lora(tiny_llama_dir, [], TINY, tmp_path / "a")
    with pytest.raises(InputError, match="max_steps must be a positive integer"):
        finetune_lora(tiny_llama_dir, pairs, TINY, tmp_path / "a", max_steps=0)
    with pytest.raises(InputError, match="recipe must be a LoraRecipe"):
        finetune_lora(tiny_llama_dir, pairs, {"r": 4}, tmp_path / "a")  # type: ignore[arg-type]
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        finetune_lora(tiny_llama_dir, pairs, TINY, tmp_path / "file")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="holds no fine-tune"):
        finetune_lora(tiny_llama_dir, pairs, TINY, tmp_path / "mine")
    qwen2 = shutil.copytree(tiny_llama_dir, tmp_path / "qwen2")  # a supported family, but not Llama
    (qwen2 / "config.json").write_text((qwen2 / "config.json").read_text().replace('"llama"', '"qwen2"'))
    with pytest.raises(ModelLoadError, match="needs a Llama-architecture Hugging Face checkpoint"):
        finetune_lora(qwen2, pairs, TINY, tmp_path / "a")
    with pytest.raises(ModelLoadError, match="does not exist"):
        finetune_lora(tmp_path / "missing.gguf", pairs, TINY, tmp_path / "a")


def test_rewrite_scores_by_hand(tiny_model, monkeypatch):
    pairs = [
        RewritePair(
            "a", "Women are too emotional to be good leaders.", "Leadership varies.", biased_words=("emotional",)
        ),
        RewritePair("b", "Men are terrible drivers.", "Driving skill varies.", biased_words=("terrible",)),
    ]
    rewrites = ["women are too emotional to be good leaders.", "Men drive well."]
    seen = {}

    def fake_generate(model, template, prompts, **kwargs):
        seen["prompts"] = prompts
        return [Generation(prompt=p, text=f" {r} ", tokens=[]) for p, r in zip(prompts, rewrites)]

    monkeypatch.setattr(lora_evaluate, "generate", fake_generate)
    scores = rewrite_eval(tiny_model, pairs, template=ChatTemplate("plain"))
    assert seen["prompts"][1] == f"{DEBIAS_INSTRUCTION} Men are terrible drivers."
    assert scores.rewrites == tuple(rewrites)
    # a: copied (all 3 content words, the stereotype kept); b: men kept, drivers ~ drive: 2 of 2
    assert scores.retention.value == pytest.approx(1.0)
    assert scores.stereotype is not None and scores.stereotype.value == pytest.approx(0.5)
    assert scores.unchanged.value == pytest.approx(0.5)
    # references: a keeps leaders (lead-) of women/good/leaders: 1/3; b keeps drivers (driv-) of men/drivers: 1/2
    assert scores.reference_retention.value == pytest.approx((1 / 3 + 1 / 2) / 2)
    assert scores.reference_stereotype is not None and scores.reference_stereotype.value == 0.0
    assert scores.to_dict()["retention"]["n"] == 2
    rows = rewrite_items(pairs, {"before": scores})  # per item: the rows the aggregate scores are means of
    assert [(r["item_id"], r["condition"]) for r in rows] == [
        ("a", "before"), ("a", "reference"), ("b", "before"), ("b", "reference"),
    ]  # fmt: skip
    before = [r for r in rows if r["condition"] == "before"]
    assert [r["rewrite"] for r in before] == rewrites and [r["unchanged"] for r in before] == [True, False]
    assert [r["retention"] for r in before] == [1.0, 1.0] and [r["stereotype_kept"] for r in before] == [True, False]
    reference = [r["retention"] for r in rows if r["condition"] == "reference"]
    assert reference == pytest.approx([1 / 3, 1 / 2]) and rows[1]["rewrite"] == "Leadership varies."
    with pytest.raises(InputError, match="other pairs"):
        rewrite_items(pairs[:1], {"before": scores})


def test_rewrite_eval_generates_on_the_tiny_model(tiny_model, pairs):
    scores = rewrite_eval(tiny_model, pairs[:3], template=ChatTemplate("plain"), max_new_tokens=4)
    assert len(scores.rewrites) == 3 and 0.0 <= scores.retention.value <= 1.0


@pytest.mark.slow
def test_a_few_steps_on_the_embedded_model(tmp_path):
    pairs = load_rewrite_pairs()[:4]
    result = finetune_lora(EMBEDDED_MODEL, pairs, LoraRecipe(), tmp_path / "smollm", progress=False, max_steps=1)
    assert result.template.name == "hf-chat" and result.base["kind"] == "embedded-gguf"
    assert 0.0 < result.losses[0] < 10.0
    assert "quantization_config" not in json.loads((result.folder / "config.json").read_text())  # de-quantised
    model = load_model(result.folder, device="cpu")
    assert model.cfg.n_layers == 30 and model.tokenizer.chat_template


@pytest.mark.fault
@pytest.mark.parametrize("damage", ["truncated", "pickled"])
def test_a_truncated_or_pickled_base_model_is_one_error_before_training(tiny_llama_dir, pairs, tmp_path, damage):
    import pickle
    import shutil

    base = shutil.copytree(tiny_llama_dir, tmp_path / "base")
    weights = base / "model.safetensors"
    if damage == "truncated":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    else:  # a pickle that runs code when loaded without weights_only: never loaded
        weights.unlink()
        (base / "pytorch_model.bin").write_bytes(pickle.dumps({"weights": os.system}))
    with pytest.raises(ModelLoadError, match=f"{base} could not be loaded as a Hugging Face model folder") as raised:
        finetune_lora(base, pairs, TINY, tmp_path / "tuned", progress=False, max_steps=1)
    assert "\n" not in str(raised.value) and not (tmp_path / "tuned").exists()


@pytest.mark.fault
def test_a_merged_model_write_killed_midway_leaves_nothing_after_the_next_run(tiny_llama_dir, pairs, tmp_path):
    import socket
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".tuned.{socket.gethostname()}.{int(dead.stdout)}.tmp"  # what a SIGKILL mid-write leaves
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"\x00" * 4096)
    finetune_lora(tiny_llama_dir, pairs, TINY, tmp_path / "tuned", progress=False, max_steps=1)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["tuned", "tuned.cache.json"]
    assert all(path.stat().st_mode & 0o777 == 0o666 & ~_umask() for path in (tmp_path / "tuned").rglob("*.*"))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
