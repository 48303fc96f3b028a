"""Every supported family beyond Llama (GPT-2, GPT-NeoX, Qwen2, Gemma), as a tiny random-weight checkpoint:
it loads from a folder matching its HF model, and steering, activation patching (grouped-query attention
included) and the audit run on it through the stable hook names. The tests run once per family
(``tiny_family_dir`` is parametrized in ``tests/conftest.py``)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import transformer_lens.patching as tl

from lens_bias.audit.crows_pairs import CrowsPairsMeasure
from lens_bias.audit.run import run_audit
from lens_bias.data import contrast_split
from lens_bias.errors import InputError
from lens_bias.interventions import AddVector
from lens_bias.models import ModelLoadError, model_record, resolve_model
from lens_bias.models.families import SUPPORTED_MODEL_TYPES
from lens_bias.patching import logit_diff_metric, patch
from lens_bias.prompts import PromptBatch
from lens_bias.steering import fit_vector, preference_measure, sweep

TEXTS = ["The nurse said that she would", "People from Italy drive recklessly.", "Paris is the capital of France."]


def test_a_family_folder_matches_its_hf_model(tiny_family_dir, tiny_family_model):
    """Log-probs equal the HF model's (weights drawn with std 0.5, so they spread over ~4 nats)."""
    from transformers import AutoModelForCausalLM

    hf_model = AutoModelForCausalLM.from_pretrained(tiny_family_dir, dtype=torch.float32)
    for text in TEXTS:
        ids = torch.tensor([tiny_family_model.tokenizer(text, add_special_tokens=False).input_ids])
        with torch.inference_mode():
            ours, theirs = tiny_family_model(ids).log_softmax(-1), hf_model(ids).logits.log_softmax(-1)
        assert theirs.std() > 1.0 and (ours - theirs).abs().max() < 1e-4
    record = model_record(tiny_family_model)
    assert record.kind == "hf-folder" and record.processing["fold_ln"] is False and len(record.sha256) == 64
    assert record.n_key_value_heads == (hf_model.config.to_dict().get("num_key_value_heads") or record.n_heads)


@pytest.fixture(scope="module")
def fitted(tiny_family_model):
    """A gender vector of the family's model at layers 0 and 1 (few pairs: the mechanics, not the direction)."""
    gender = contrast_split("gender", n_train=4, n_test=4, seed=0)
    return fit_vector(tiny_family_model, gender, [0, 1], readout="mean_from_difference", batch_size=8)


def test_steering_fits_a_vector_and_sweeps_it(tiny_family_model, fitted):
    model = tiny_family_model
    assert fitted.vector.directions.shape == (2, model.cfg.d_model) and fitted.layer in (0, 1)
    measure = preference_measure(model, fitted.split.test[:2], batch_size=8)
    rows = sweep(
        model, fitted.vector, [fitted.layer], [0.0, 8.0], lambda m, steer: {"pref": measure(steer)}, start=None
    )
    assert [row["multiplier"] for row in rows] == [0.0, 8.0]
    assert rows[0]["pref"] == measure([]) and rows[1]["pref"] != rows[0]["pref"]


def _pair(model, length: int = 5, swap_at: int = 2) -> tuple[PromptBatch, PromptBatch]:
    generator = torch.Generator().manual_seed(0)
    clean = torch.randint(3, 200, (1, length), generator=generator)
    corrupted = clean.clone()
    corrupted[0, swap_at] = 3 + (int(clean[0, swap_at]) + 17) % 197
    lengths = torch.tensor([length])
    return tuple(PromptBatch(t, lengths, {"last": lengths - 1}, ["pair"]) for t in (clean, corrupted))  # type: ignore[return-value]


def test_patching_restores_the_swapped_token_and_matches_transformer_lens_per_head(tiny_family_model):
    model = tiny_family_model
    clean, corrupted = _pair(model)
    metric = logit_diff_metric([5], [7])
    first = patch(model, clean, corrupted, metric, target="resid_pre", layers=[0])
    assert torch.allclose(first.scores[0, 0], torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0]), atol=1e-3)
    _, cache = model.run_with_cache(clean.tokens)
    for target, theirs in [
        ("z", tl.get_act_patch_attn_head_out_all_pos),
        ("k", tl.get_act_patch_attn_head_k_all_pos),
        ("v", tl.get_act_patch_attn_head_v_all_pos),
    ]:
        ours = patch(model, clean, corrupted, metric, target=target, normalize=False)
        reference = theirs(model, corrupted.tokens, cache, lambda logits: metric(logits, corrupted).mean())
        kv_heads = model.cfg.n_key_value_heads or model.cfg.n_heads
        assert ours.scores.shape == (1, model.cfg.n_layers, model.cfg.n_heads if target == "z" else kv_heads)
        assert (ours.scores[0] - reference).abs().max() <= 1e-4


def test_the_audit_runs_at_baseline_and_steered(tiny_family_model, fitted):
    model = tiny_family_model
    conditions = {"steered": [AddVector(fitted.vector, 4.0, [1], start=None)]}
    values, rows = run_audit(model, [CrowsPairsMeasure(n=4, seed=0)], conditions, batch_size=4)
    summaries = values["crows_pairs"]["summaries"]
    assert set(summaries) == {"baseline", "steered"}
    assert not rows["crows_pairs"]["baseline"]["failed"].any()
    assert not torch.equal(
        torch.as_tensor(rows["crows_pairs"]["baseline"]["whole"]),
        torch.as_tensor(rows["crows_pairs"]["steered"]["whole"]),
    )


def test_resid_mid_exists_only_where_attention_and_mlp_are_sequential(tiny_family_model):
    """GPT-NeoX adds attention and MLP to the same residual (no resid_mid): asking for it is one clear error."""
    model = tiny_family_model
    clean, corrupted = _pair(model)
    metric = logit_diff_metric([5], [7])
    if model.cfg.parallel_attn_mlp:
        with pytest.raises(InputError, match="hook_resid_mid"):
            patch(model, clean, corrupted, metric, target="resid_mid")
    else:
        assert patch(model, clean, corrupted, metric, target="resid_mid").scores.shape == (1, model.cfg.n_layers, 5)


UNSUPPORTED = {
    "another model_type": ({"model_type": "mamba"}, "model_type 'mamba'.*" + ", ".join(SUPPORTED_MODEL_TYPES)),
    "rope scaling": ({"rope_parameters": {"rope_type": "llama3", "factor": 8.0}}, "rope scaling 'llama3'"),
    "older rope scaling": ({"rope_scaling": {"type": "linear", "factor": 2.0}}, "rope scaling 'linear'"),
    "Qwen2 sliding windows": ({"model_type": "qwen2", "use_sliding_window": True}, "use_sliding_window"),
}


@pytest.mark.parametrize("case", list(UNSUPPORTED))
def test_what_is_not_supported_is_one_clear_error_before_loading(tiny_llama_dir, tmp_path, case):
    """Refused by :func:`resolve_model`, which reads the config only."""
    folder = shutil.copytree(tiny_llama_dir, tmp_path / "model")
    edit, message = UNSUPPORTED[case]
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **edit}))
    with pytest.raises(ModelLoadError, match=message):
        resolve_model(folder)


def test_shared_prefix_scoring_equals_a_plain_forward(tiny_family_model):
    """Scores without interventions run the common prefix left-padded into a KV cache and the rest from it
    (lens_bias.forward.shared_prefix): equal to one plain forward per text in every family (absolute and rotary
    positions, Gemma 2's and Mistral's 4-token sliding windows, soft caps)."""
    from lens_bias.forward.prefixes import prefix_groups
    from lens_bias.forward.readouts import token_logprobs
    from lens_bias.prompts import continuation_batch

    model = tiny_family_model
    texts = [
        "The nurse said that she would be late again today.",
        "The nurse said that she would be early again.",
        "The nurse said that",
        "Paris is the capital of France.",
    ]
    batch = continuation_batch(model.tokenizer, [""] * len(texts), texts)
    sequences = [batch.tokens[i, : batch.lengths[i]].tolist() for i in range(len(texts))]
    groups = prefix_groups(sequences, max_members=4)
    assert max(len(g.members) for g in groups) >= 2 and len({g.shared for g in groups}) >= 2  # shared, left-padded
    got = token_logprobs(model, texts, batch_size=4)
    for i in range(len(texts)):
        sequence = batch.tokens[i, : batch.lengths[i]]
        with torch.inference_mode():
            want = model(sequence[None]).log_softmax(-1)[0, :-1].gather(-1, sequence[1:, None])[:, 0]
        assert torch.allclose(got.logprobs[i], want, atol=1e-4), (texts[i], (got.logprobs[i] - want).abs().max())


def test_one_load_of_the_processed_weights_equals_transformer_lens_key_by_key(tiny_family_dir):
    """:func:`load_processed` gives the parameters, buffers and processed config of TransformerLens's own
    ``load_and_process_state_dict`` (which loads one key at a time), in every family."""
    from transformer_lens import HookedTransformer
    from transformers import AutoModelForCausalLM

    from lens_bias.models.families import convert_weights, hooked_config_of
    from lens_bias.models.hf import load_processed

    hf_model = AutoModelForCausalLM.from_pretrained(tiny_family_dir)
    processing = {"fold_ln": True, "center_writing_weights": True, "center_unembed": True, "fold_value_biases": True}

    def fresh() -> HookedTransformer:
        cfg = hooked_config_of(hf_model.config, dtype=torch.float32, device="cpu", model_name="tiny")
        return HookedTransformer(cfg, move_to_device=False)

    ours, theirs = fresh(), fresh()
    load_processed(ours, convert_weights(hf_model, ours.cfg), processing)
    theirs.load_and_process_state_dict(convert_weights(hf_model, theirs.cfg), **processing)
    mine, reference = ours.state_dict(), theirs.state_dict()
    assert mine.keys() == reference.keys()
    assert all(torch.equal(value, reference[key]) for key, value in mine.items())
    assert ours.cfg.normalization_type == theirs.cfg.normalization_type
    assert "load_state_dict" not in vars(ours)  # the method is the class's again
