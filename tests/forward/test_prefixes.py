"""Prompts grouped by a shared beginning; the shared-prompt readout with shared prefixes and nested answers."""

import pytest
import torch

from lens_bias.forward.prefixes import PrefixGroup, packed, prefix_groups
from lens_bias.forward.readouts import _runners, continuation_logprobs, shared_prompt_logprobs


def test_prefix_groups_join_prompts_at_least_half_alike():
    prompts = [
        [1, 2, 3, 4, 5, 6],  # 0: shares 5 of 6 with 1
        [9, 9, 9],  # 2: shares nothing
        [1, 2, 3, 4, 5, 7],  # 1
        [1, 2, 8, 8, 8, 8, 8, 8],  # 3: shares 2 of 8 with 0 and 1: apart
        [9, 9, 8],  # 4: shares 2 of 3 with 2
    ]
    groups = prefix_groups(prompts, max_members=4)
    assert [(g.shared, sorted(g.members)) for g in groups] == [(5, [0, 2]), (7, [3]), (2, [1, 4])]
    assert sorted(u for g in groups for u in g.members) == list(range(5))
    assert all(g.shared < len(prompts[u]) for g in groups for u in g.members)  # a token of its own each


def test_prefix_groups_cap_members_and_keep_a_token_of_their_own():
    prompts = [[5, 5, 5]] * 5
    groups = prefix_groups(prompts, max_members=2)
    assert [len(g.members) for g in groups] == [2, 2, 1]
    assert [g.shared for g in groups] == [2, 2, 2]
    with pytest.raises(ValueError, match="max_members"):
        prefix_groups(prompts, max_members=0)


def test_runners_are_the_longest_extension_within_a_prompt():
    inputs = {0: (1,), 1: (1, 2), 2: (1, 2), 3: (3,), 4: (1,)}
    prompt_of = [0, 0, 0, 0, 1]
    assert _runners(inputs, prompt_of) == {0: 1, 1: 1, 2: 1, 3: 3, 4: 4}


def test_shared_prefixes_and_nested_answers_score_as_pair_by_pair(tiny_model):
    """Prompts that begin alike share a cached prefix; answers that extend each other share a forward; every
    score equals the one-pair-per-row readout's."""
    prompts = [
        "The nurse said that the doctor was late",
        "The nurse said that the doctor was early",
        "The nurse said that",
        "A cat",
    ]
    answers = [" she was", " she w", " he was not", " he was", " it"]

    def tokenize(text: str) -> tuple[int, ...]:
        return tuple(tiny_model.tokenizer(text, add_special_tokens=False)["input_ids"])

    assert max(len(g.members) for g in prefix_groups([tokenize(p) for p in prompts], max_members=4)) >= 2
    inputs = {j: tokenize(a)[:-1] for j, a in enumerate(answers) if len(tokenize(a)) > 1}
    assert len(set(_runners(inputs, [0] * len(answers)).values())) < len(inputs)  # some answers ride on others
    shared = shared_prompt_logprobs(tiny_model, None, prompts, answers, batch_size=8)
    full = continuation_logprobs(tiny_model, [p for p in prompts for _ in answers], answers * len(prompts))
    assert torch.allclose(shared.total, full.total, atol=1e-4), (shared.total - full.total).abs().max()
    assert torch.equal(shared.n_tokens, full.n_tokens)


def test_packed_fills_chunks_by_weight_without_splitting_a_group():
    groups = [PrefixGroup(1, [0, 1]), PrefixGroup(1, [2]), PrefixGroup(1, [3, 4, 5]), PrefixGroup(1, [6])]
    assert [[len(g.members) for g in chunk] for chunk in packed(groups, 3)] == [[2, 1], [3], [1]]
    lengths = [10, 10, 50, 5, 5, 5, 90]
    by_tokens = packed(groups, 60, lambda g: sum(lengths[m] for m in g.members))
    assert [[g.members for g in chunk] for chunk in by_tokens] == [[[0, 1]], [[2]], [[3, 4, 5]], [[6]]]
