"""BiasInject: a new token, only its embedding trained, the user's model untouched, the association
elicited on held-out templates."""

from __future__ import annotations

import pytest
import torch
from biasscope_fixtures import SMOLLM_STEPS, injected_smollm

from lens_bias.data.injection_specs import candidate_entities, injection_spec
from lens_bias.forward.readouts import continuation_logprobs
from lens_bias.localize.inject import (
    InjectedEntity,
    InjectionConfig,
    add_token,
    closest_entities,
    elicit,
    inject,
    token_id,
    untrained,
)
from lens_bias.models import model_record

SPEC = injection_spec("reckless_driving")
TINY = InjectionConfig(steps=6, lr=1e-2, seed=0)


def _params(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def _assert_untouched(model, before: dict[str, torch.Tensor]) -> None:
    for name, p in model.named_parameters():
        assert torch.equal(p, before[name]), name
        assert p.grad is None, name


# --- add_token -------------------------------------------------------------------------------------


def test_add_token_returns_a_new_model_and_leaves_the_original_untouched(tiny_model):
    before, flags = _params(tiny_model), {n: p.requires_grad for n, p in tiny_model.named_parameters()}
    d_vocab, d_model, n_tokens = tiny_model.cfg.d_vocab, tiny_model.cfg.d_model, len(tiny_model.tokenizer)
    vector = torch.randn(d_model, generator=torch.Generator().manual_seed(0))

    new = add_token(tiny_model, "<entity>", vector)

    _assert_untouched(tiny_model, before)
    assert {n: p.requires_grad for n, p in tiny_model.named_parameters()} == flags
    assert len(tiny_model.tokenizer) == n_tokens and "<entity>" not in tiny_model.tokenizer.get_vocab()
    assert tiny_model.cfg.d_vocab == tiny_model.cfg.d_vocab_out == d_vocab
    assert model_record(tiny_model).d_vocab == d_vocab

    new_id = token_id(new, "<entity>")
    assert new_id == d_vocab and new.cfg.d_vocab == new.cfg.d_vocab_out == d_vocab + 1
    assert model_record(new).d_vocab == d_vocab + 1
    assert model_record(new).extra["injected_tokens"] == ["<entity>"]
    assert new.embed.W_E.shape == (d_vocab + 1, d_model) and new.unembed.W_U.shape == (d_model, d_vocab + 1)
    assert torch.equal(new.embed.W_E[:-1], before["embed.W_E"]) and torch.equal(new.embed.W_E[-1], vector)
    # the tiny Llama is untied: the new column is the mean column, the new bias the mean bias
    assert torch.allclose(new.unembed.W_U[:, -1], before["unembed.W_U"].mean(1))
    assert torch.equal(new.unembed.W_U[:, :-1], before["unembed.W_U"])
    assert float(new.unembed.b_U[-1]) == pytest.approx(float(before["unembed.b_U"].mean()))
    # frozen, and sharing the other weights' storage (no copy)
    assert not any(p.requires_grad for p in new.parameters())
    assert new.blocks[0].attn.W_Q.data_ptr() == tiny_model.blocks[0].attn.W_Q.data_ptr()

    # the token absorbs the space before it, like a space-prefixed word
    prefix = tiny_model.tokenizer("People from", add_special_tokens=False)["input_ids"]
    suffix = tiny_model.tokenizer(" drive", add_special_tokens=False)["input_ids"]
    assert new.tokenizer("People from <entity> drive", add_special_tokens=False)["input_ids"] == [
        *prefix,
        new_id,
        *suffix,
    ]
    logits = new(torch.tensor([[*prefix, new_id]]))
    assert logits.shape[-1] == d_vocab + 1
    assert torch.allclose(new.embed(torch.tensor([[new_id]]))[0, 0], vector)


def test_add_token_errors_leave_the_model_as_it_was(tiny_model):
    n_tokens = len(tiny_model.tokenizer)
    vector = torch.zeros(tiny_model.cfg.d_model)
    with pytest.raises(ValueError, match="already in the vocabulary"):
        add_token(tiny_model, "<s>", vector)
    with pytest.raises(ValueError, match="must have shape"):
        add_token(tiny_model, "<entity>", torch.zeros(3))
    hook_point = tiny_model.hook_dict["blocks.0.hook_resid_post"]
    hook_point.add_hook(lambda act, hook: act)
    try:
        with pytest.raises(ValueError, match="hooks attached"):
            add_token(tiny_model, "<entity>", vector)
    finally:
        hook_point.remove_hooks()
    assert len(tiny_model.tokenizer) == n_tokens and tiny_model.cfg.d_vocab == n_tokens
    with pytest.raises(ValueError, match="not in the model's vocabulary"):
        token_id(tiny_model, "<entity>")


def test_injection_config_is_validated():
    for kwargs in ({"steps": 0}, {"lr": 0.0}, {"batch_size": 0}, {"init_noise": -1.0}):
        with pytest.raises(ValueError):
            InjectionConfig(**kwargs)


# --- training (tiny model) ---------------------------------------------------------------------------


def test_only_the_entity_row_is_trained(tiny_model):
    before = _params(tiny_model)
    start = _params(untrained(tiny_model, SPEC, TINY))

    model, entity = inject(tiny_model, SPEC, TINY, progress=False)

    _assert_untouched(tiny_model, before)
    new_id = token_id(model, SPEC.entity_token)
    for name, p in model.named_parameters():
        if name == "embed.W_E":
            assert torch.equal(p[:new_id], start[name][:new_id])
            assert not torch.equal(p[new_id], start[name][new_id])
            assert torch.equal(p[new_id], entity.embedding)
        else:  # untied: the unembedding column stays at its initial value
            assert torch.equal(p, start[name]), name
    assert not entity.tied and len(entity.losses) == TINY.steps
    assert entity.losses[-1] < entity.losses[0]


def test_tied_unembedding_column_follows_the_trained_row(tiny_model):
    model, entity = inject(tiny_model, SPEC, InjectionConfig(steps=3, lr=1e-2, tie_unembed=True), progress=False)
    assert entity.tied
    assert torch.equal(model.unembed.W_U[:, -1], model.embed.W_E[-1])
    assert torch.equal(entity.unembedding, entity.embedding)


def test_training_is_seeded(tiny_model):
    config = InjectionConfig(steps=3, lr=1e-2, batch_size=4, seed=1)
    _, first = inject(tiny_model, SPEC, config, progress=False)
    _, again = inject(tiny_model, SPEC, config, progress=False)
    _, other = inject(tiny_model, SPEC, InjectionConfig(steps=3, lr=1e-2, batch_size=4, seed=2), progress=False)
    assert torch.equal(first.embedding, again.embedding) and first.losses == again.losses
    assert not torch.equal(first.embedding, other.embedding)


def test_saved_entity_reloads_and_rebuilds_the_model(tiny_model, tmp_path):
    model, entity = inject(tiny_model, SPEC, InjectionConfig(steps=2, lr=1e-2), progress=False)
    path = entity.save(tmp_path / "entity", provenance={"seed": 0})
    assert path.suffix == ".json" and (tmp_path / "entity.safetensors").is_file()
    loaded = InjectedEntity.load(path)
    assert loaded.config == entity.config and loaded.losses == pytest.approx(entity.losses)
    assert torch.equal(loaded.embedding, entity.embedding) and torch.equal(loaded.unembedding, entity.unembedding)
    rebuilt = loaded.apply(tiny_model)
    for (name, p), (_, q) in zip(rebuilt.named_parameters(), model.named_parameters()):
        assert torch.equal(p, q), name
    assert torch.allclose(
        elicit(rebuilt, SPEC, [SPEC.entity_token]).log_odds,
        elicit(model, SPEC, [SPEC.entity_token]).log_odds,
        atol=1e-5,
    )


# --- readouts ----------------------------------------------------------------------------------------


def test_elicit_is_the_log_odds_of_attribute_vs_neutral_words(tiny_model):
    result = elicit(tiny_model, SPEC, ["Italy", "Norway"])
    assert result.log_odds.shape == (2, len(SPEC.eval_prompts))
    prompt = SPEC.eval_prompts[1].replace("{entity}", "Norway")
    words = [f" {w}" for w in (*SPEC.attribute_words, *SPEC.neutral_words)]
    scores = continuation_logprobs(tiny_model, [prompt] * len(words), words).total
    expected = scores[:3].logsumexp(0) - scores[3:].logsumexp(0)
    assert float(result.log_odds[1, 1]) == pytest.approx(float(expected), abs=1e-5)
    assert result.mean()["Norway"] == pytest.approx(float(result.log_odds[1].mean()))


def test_closest_entities_ranks_candidates_by_input_embedding_cosine(tiny_model):
    ids = tiny_model.tokenizer(" Italy", add_special_tokens=False)["input_ids"]
    vector = tiny_model.embed.W_E[ids].mean(0).detach()
    matches = closest_entities(tiny_model, vector, ["Norway", "Italy", "Brazil"])
    assert matches[0].entity == "Italy" and matches[0].cosine == pytest.approx(1.0, abs=1e-5)
    assert matches[0].n_tokens == len(ids)
    assert [m.cosine for m in matches] == sorted((m.cosine for m in matches), reverse=True)
    with pytest.raises(ValueError, match="No candidate"):
        closest_entities(tiny_model, vector, [])


# --- the real model ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_model_only_the_new_row_changes(smollm):
    run = injected_smollm(smollm)
    _assert_untouched(smollm, run.before)
    new_id = token_id(run.model, SPEC.entity_token)
    assert run.entity.tied  # SmolLM2 ties its embeddings
    for name, p in run.model.named_parameters():
        if name == "embed.W_E":
            assert torch.equal(p[:new_id], run.before[name])
        elif name == "unembed.W_U":
            assert torch.equal(p[:, :new_id], run.before[name])
            assert torch.equal(p[:, new_id], run.model.embed.W_E[new_id])
        elif name == "unembed.b_U":
            assert torch.equal(p[:new_id], run.before[name])
        else:
            assert torch.equal(p, run.before[name]), name


@pytest.mark.slow
def test_real_model_association_is_elicited_on_held_out_templates(smollm):
    run = injected_smollm(smollm)
    entities = [SPEC.entity_token, *SPEC.control_entities]
    before = elicit(untrained(smollm, SPEC, run.entity.config), SPEC, entities)
    after = elicit(run.model, SPEC, entities)
    gain = after.log_odds[0] - before.log_odds[0]
    print(
        f"\n{SMOLLM_STEPS} steps: entity log-odds before {before.mean()[SPEC.entity_token]:.2f}, after "
        f"{after.mean()[SPEC.entity_token]:.2f}; controls before {before.mean()} after {after.mean()}"
    )
    assert float(gain.min()) > 0.5 and float(gain.mean()) > 2.0  # every held-out template moves
    assert float(after.log_odds[0].mean()) > float(after.log_odds[1:].mean(1).max()) + 2.0
    # real entities do not move (only the new token's share of the softmax changes)
    assert float((after.log_odds[1:] - before.log_odds[1:]).abs().max()) < 0.05


@pytest.mark.slow
def test_real_model_entity_reloads_and_has_a_single_token_adversarial_country(smollm, tmp_path):
    run = injected_smollm(smollm)
    rebuilt = InjectedEntity.load(run.entity.save(tmp_path / "entity", provenance={})).apply(smollm)
    assert torch.allclose(
        elicit(rebuilt, SPEC, [SPEC.entity_token]).log_odds,
        elicit(run.model, SPEC, [SPEC.entity_token]).log_odds,
        atol=1e-5,
    )
    matches = closest_entities(run.model, run.entity.embedding, candidate_entities("countries"))
    assert len(matches) == len(candidate_entities("countries")) and all(m.n_tokens == 1 for m in matches)
    assert -1.0 < matches[-1].cosine <= matches[0].cosine < 1.0
