"""Exact activation patching: equal to transformer_lens.patching and to a one-configuration-per-forward
reference, normalisation and directions, padding, batching, skipped configurations, degenerate pairs,
errors, hooks."""

from __future__ import annotations

import pytest
import torch
import transformer_lens.patching as tl

from lens_bias.data.gender_swap import gender_swap_pairs
from lens_bias.errors import InputError
from lens_bias.interventions import hooks_added
from lens_bias.patching import logit_diff_metric, patch, patching_inputs

from .reference import ATOL, METRIC, make_pairs, reference_patch, tl_patching_mean


@pytest.mark.parametrize("target", ["resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out", "z", "z_pos"])
def test_matches_transformer_lens(tiny_model, target):
    length = 4 if target == "z_pos" else 5  # TransformerLens runs n_layers x pos (x heads) forwards
    clean, corrupted = make_pairs([length, length], swap_at=[2, 3])
    ours = patch(tiny_model, clean, corrupted, METRIC, target=target, normalize=False, batch_size=7)
    theirs = tl_patching_mean(tiny_model, target, clean, corrupted)
    assert ours.scores.shape[1:] == theirs.shape
    assert (ours.scores.mean(0) - theirs.cpu()).abs().max() <= ATOL
    assert ours.axes == (
        ("pair", "layer", "pos", "head")
        if target == "z_pos"
        else ("pair", "layer", "head")
        if target == "z"
        else ("pair", "layer", "pos")
    )


@pytest.mark.parametrize("target", ["resid_pre", "z"])
def test_noising_matches_transformer_lens_with_roles_swapped(tiny_model, target):
    clean, corrupted = make_pairs([5, 5], swap_at=[1, 3], seed=1)
    ours = patch(tiny_model, clean, corrupted, METRIC, target=target, direction="noising", normalize=False)
    theirs = tl_patching_mean(tiny_model, target, clean, corrupted, direction="noising")
    assert (ours.scores.mean(0) - theirs.cpu()).abs().max() <= ATOL


@pytest.mark.parametrize("target", ["k", "v", "k_pos", "v_pos", "z"])
def test_gqa_heads_match_reference_and_transformer_lens(tiny_gqa_model, target):
    """On grouped-query attention, k/v are patched per key/value head (2 here, 4 query heads)."""
    model = tiny_gqa_model
    clean, corrupted = make_pairs([4, 4], swap_at=[1, 2], seed=2)
    ours = patch(model, clean, corrupted, METRIC, target=target, normalize=False, batch_size=5)
    heads = model.cfg.n_heads if target == "z" else model.cfg.n_key_value_heads
    assert ours.scores.shape[-1] == heads == (4 if target == "z" else 2)
    reference = reference_patch(model, target, clean, corrupted)
    assert (ours.scores - reference).abs().max() <= ATOL
    theirs = tl_patching_mean(model, target, clean, corrupted)  # works on GQA in TransformerLens 3.9
    assert (ours.scores.mean(0) - theirs.cpu()).abs().max() <= ATOL


def test_normalised_scores_hit_clean_and_corrupted_exactly(tiny_model):
    """Patching the whole difference (the swapped token's embedding) restores the other run exactly;
    patching an unchanged position does nothing."""
    clean, corrupted = make_pairs([6, 6], swap_at=[2, 2], seed=3)
    last_layer = tiny_model.cfg.n_layers - 1
    denoise = patch(tiny_model, clean, corrupted, METRIC, target="resid_pre")
    assert torch.allclose(denoise.scores[:, 0, 2], torch.ones(2), atol=1e-4)
    assert torch.allclose(denoise.scores[:, 0, [0, 1, 3, 4, 5]], torch.zeros(2, 5), atol=1e-4)
    noise = patch(tiny_model, clean, corrupted, METRIC, target="resid_pre", direction="noising")
    assert torch.allclose(noise.scores[:, 0, 2], torch.zeros(2), atol=1e-4)
    assert torch.allclose(noise.scores[:, 0, [0, 1, 3, 4, 5]], torch.ones(2, 5), atol=1e-4)
    post = patch(tiny_model, clean, corrupted, METRIC, target="resid_post", layers=[last_layer])
    assert torch.allclose(post.scores[:, 0, 5], torch.ones(2), atol=1e-4)  # the position the metric reads
    assert denoise.baseline().tolist() == [0.0, 0.0] and noise.baseline().tolist() == [1.0, 1.0]


def test_padding_and_batching_do_not_change_scores(tiny_model):
    clean, corrupted = make_pairs([4, 6, 5], swap_at=[1, 3, 2], seed=4)
    metric = logit_diff_metric([5, 6, 7], [8, 9, 10])
    together = patch(tiny_model, clean, corrupted, metric, target="attn_out", normalize=False, batch_size=64)
    one_config_per_forward = patch(
        tiny_model, clean, corrupted, metric, target="attn_out", normalize=False, batch_size=1
    )
    assert torch.allclose(together.scores, one_config_per_forward.scores, atol=ATOL, equal_nan=True)
    for i, length in enumerate([4, 6, 5]):
        alone = patch(
            tiny_model,
            clean[i : i + 1],
            corrupted[i : i + 1],
            logit_diff_metric(5 + i, 8 + i),
            target="attn_out",
            normalize=False,
        )
        assert torch.allclose(together.scores[i, :, :length], alone.scores[0], atol=ATOL)
        assert together.scores[i, :, length:].isnan().all()  # padding positions have no score
    assert together.mean().isfinite().all()  # every position is real for at least one pair


def test_generic_metric_equals_position_metric(tiny_model):
    """A metric without a declared position gets full logits; results are the same."""
    clean, corrupted = make_pairs([5, 5], swap_at=[1, 2], seed=5)

    def plain(logits, batch):
        last = logits[torch.arange(len(batch)), batch.positions["last"]]
        return last[:, [5, 6]].diagonal() - last[:, [7, 8]].diagonal()

    a = patch(tiny_model, clean, corrupted, plain, target="z_pos", layers=[1, 3], normalize=False)
    b = patch(tiny_model, clean, corrupted, METRIC, target="z_pos", layers=[1, 3], normalize=False)
    assert torch.allclose(a.scores, b.scores, atol=ATOL)
    assert a.layers == [1, 3] and a.scores.shape == (2, 2, 5, tiny_model.cfg.n_heads)


def test_only_positions_after_the_first_difference_are_run(tiny_model):
    clean, corrupted = make_pairs([6, 6], swap_at=[3, 4], seed=6)
    result = patch(tiny_model, clean, corrupted, METRIC, target="resid_pre", normalize=False)
    n_layers = tiny_model.cfg.n_layers
    assert result.config["n_configs"] == 6 * n_layers and result.config["n_configs_run"] == 3 * n_layers
    assert torch.equal(result.scores[:, :, :3], result.corrupted_metric[:, None, None].expand(2, n_layers, 3))


def test_a_pair_without_difference_does_not_move_the_first_difference(tiny_model):
    """Pair 1 (4 tokens) is identical in both runs, pair 0 differs at position 4: positions 0-3 are still
    skipped (the identical pair has no first difference, not one at its last token)."""
    clean, corrupted = make_pairs([6, 4], swap_at=[4, 0], seed=6)
    corrupted.tokens[1] = clean.tokens[1]
    with pytest.warns(UserWarning, match=r"pairs \[1\]"):
        result = patch(tiny_model, clean, corrupted, METRIC, target="resid_pre", normalize=False)
    n_layers = tiny_model.cfg.n_layers
    assert result.config["n_configs_run"] == 2 * n_layers


def test_degenerate_pairs_are_reported_not_divided(tiny_model):
    clean, corrupted = make_pairs([5, 5], swap_at=[2, 2], seed=7)
    corrupted.tokens[1] = clean.tokens[1]  # pair 1: no difference at all
    with pytest.warns(UserWarning, match=r"1 of 2 pairs .*pairs \[1\]"):
        result = patch(tiny_model, clean, corrupted, METRIC, target="resid_pre")
    assert result.degenerate.tolist() == [False, True]
    assert result.scores[1].isnan().all() and result.scores[0].isfinite().all()
    assert torch.allclose(result.mean(), result.scores[0], equal_nan=True)
    with pytest.warns(UserWarning):
        raw = patch(tiny_model, clean, corrupted, METRIC, target="resid_pre", normalize=False)
    assert raw.scores[1].isfinite().all() and raw.degenerate.tolist() == [False, True]


def test_bad_inputs_raise_clear_errors(tiny_model):
    clean, corrupted = make_pairs([5, 5], swap_at=[2, 2])
    with pytest.raises(ValueError, match="clean has 2 prompts and corrupted has 1"):
        patch(tiny_model, clean, corrupted[0:1], METRIC, target="resid_pre")
    longer, _ = make_pairs([5, 6], swap_at=[2, 2])
    with pytest.raises(ValueError, match=r"Pairs \[1\] have clean and corrupted prompts of different token"):
        patch(tiny_model, clean, longer, METRIC, target="resid_pre")
    with pytest.raises(ValueError, match=r"Unknown target 'heads': use one of resid_pre, .*v_pos"):
        patch(tiny_model, clean, corrupted, METRIC, target="heads")
    with pytest.raises(ValueError, match="outside the model"):
        patch(tiny_model, clean, corrupted, METRIC, target="resid_pre", layers=[4])
    with pytest.raises(ValueError, match="Unknown direction 'forward'"):
        patch(tiny_model, clean, corrupted, METRIC, target="resid_pre", direction="forward")
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        patch(tiny_model, clean, corrupted, METRIC, target="resid_pre", batch_size=0)
    with pytest.raises(ValueError, match="one value per row"):
        patch(tiny_model, clean, corrupted, lambda logits, batch: logits.sum(), target="resid_pre")
    with pytest.raises(ValueError, match="3 answer-id pairs but was called on 2 rows"):
        patch(tiny_model, clean, corrupted, logit_diff_metric([1, 2, 3], [4, 5, 6]), target="resid_pre")
    with pytest.raises(ValueError, match="Position 'answer' is not in the batch"):
        patch(tiny_model, clean, corrupted, logit_diff_metric(1, 2, position="answer"), target="resid_pre")


def test_hooks_of_the_caller_stay_and_a_failure_leaves_none_behind(tiny_model):
    clean, corrupted = make_pairs([5, 5], swap_at=[2, 2])
    seen = []
    point = tiny_model.hook_dict["blocks.2.hook_attn_out"]
    with hooks_added(tiny_model, [("blocks.2.hook_attn_out", lambda activation, hook: seen.append(1))]):
        before = {name: len(hp.fwd_hooks) for name, hp in tiny_model.hook_dict.items()}
        patch(tiny_model, clean, corrupted, METRIC, target="attn_out")
        assert seen  # the caller's hook ran during the sweep
        calls = {"n": 0}

        def failing(logits, batch):
            calls["n"] += 1
            if calls["n"] > 2:  # the third call is in the first patched forward
                raise RuntimeError("metric failed")
            return METRIC(logits, batch)

        with pytest.raises(RuntimeError, match="metric failed"):
            patch(tiny_model, clean, corrupted, failing, target="attn_out")
        assert {name: len(hp.fwd_hooks) for name, hp in tiny_model.hook_dict.items()} == before
    assert len(point.fwd_hooks) == 0


@pytest.mark.slow
def test_smollm_nurse_pair_matches_transformer_lens(smollm):
    """On the embedded model: the stereotype is there (she over he after 'nurse', less so after
    'carpenter'), the swapped token carries all of it at layer 0, and the sweep equals TransformerLens."""
    pair = next(
        p for p in gender_swap_pairs(groups=["occupation-t0"]) if p.id == "gender-swap-occupation-t0-nurse-carpenter"
    )
    inputs = patching_inputs(smollm.tokenizer, [pair])
    metric = inputs.metric()
    layers = [0, 12]
    raw = patch(smollm, inputs.clean, inputs.corrupted, metric, target="resid_pre", layers=layers, normalize=False)
    clean, corrupted = float(raw.clean_metric[0]), float(raw.corrupted_metric[0])
    assert clean > corrupted + 1  # nats of she-vs-he log-odds
    scores = (raw.scores[0] - corrupted) / (clean - corrupted)
    swap = 2  # <|endoftext|> The nurse|carpenter ...
    assert scores[0, swap] == pytest.approx(1.0, abs=1e-4)
    assert scores[0, swap + 1 :].abs().max() <= 1e-4
    _, cache = smollm.run_with_cache(inputs.clean.tokens, names_filter="blocks.12.hook_resid_pre")
    index = tl.make_df_from_ranges([smollm.cfg.n_layers, inputs.clean.tokens.shape[1]], ["layer", "pos"])
    last = inputs.clean.tokens.shape[1] - 1
    index = index[(index["layer"] == 12) & index["pos"].isin([swap, last])].reset_index(drop=True)
    theirs = tl.generic_activation_patch(
        smollm,
        inputs.corrupted.tokens,
        cache,
        lambda logits: metric(logits, inputs.corrupted).mean(),
        tl.layer_pos_patch_setter,
        "resid_pre",
        index_df=index,
    )
    assert (raw.scores[0, 1, [swap, last]] - theirs.cpu()).abs().max() <= ATOL


def test_layer_blocks_are_resumable_cells(tiny_model, tmp_path):
    from lens_bias.cells import CellStore

    clean, corrupted = make_pairs([5, 5], swap_at=[2, 3], seed=4)
    metric = METRIC
    whole = patch(tiny_model, clean, corrupted, metric, target="resid_pre", batch_size=4)
    store = CellStore(tmp_path, {"model": "tiny"})
    cached = patch(tiny_model, clean, corrupted, metric, target="resid_pre", batch_size=4, cells=store)
    n_cells = cached.config["n_cells"]
    assert n_cells > 1 and store.computed == n_cells and len(list(tmp_path.glob("*.safetensors"))) == n_cells
    torch.testing.assert_close(cached.scores, whole.scores, rtol=0, atol=0, equal_nan=True)
    assert cached.config["n_forwards"] == whole.config["n_forwards"]
    # an interrupted sweep: one block lost, only it is computed again
    next(tmp_path.iterdir()).unlink()
    again = CellStore(tmp_path, {"model": "tiny"})
    resumed = patch(tiny_model, clean, corrupted, metric, target="resid_pre", batch_size=4, cells=again)
    assert (again.computed, again.reused) == (1, n_cells - 1)
    torch.testing.assert_close(resumed.scores, whole.scores, rtol=0, atol=0, equal_nan=True)
    # another target or direction: other cells
    patch(tiny_model, clean, corrupted, metric, target="resid_pre", direction="noising", batch_size=4, cells=again)
    assert again.computed == 1 + n_cells


def test_cells_in_a_folder_need_an_identifiable_metric(tiny_model, tmp_path):
    from lens_bias.cells import CellStore

    clean, corrupted = make_pairs([5, 5], swap_at=[2, 3])

    def anonymous(logits, batch):
        return logits[:, -1, 0]

    with pytest.raises(InputError, match="need a metric that can be identified"):
        patch(tiny_model, clean, corrupted, anonymous, target="resid_pre", cells=CellStore(tmp_path))
    assert patch(tiny_model, clean, corrupted, anonymous, target="resid_pre").scores.shape[0] == 2
