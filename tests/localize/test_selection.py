"""BiasScope head selection: top-k of one run, heads recurring in the top k of several runs."""

from __future__ import annotations

import pytest
import torch

from lens_bias.localize import recurring_heads, top_k_heads


def test_top_k_heads_ranks_signed_scores():
    scores = torch.zeros(3, 4)
    scores[2, 1], scores[0, 3], scores[1, 0] = 5.0, 3.0, -9.0
    assert top_k_heads(scores, 2) == [(2, 1), (0, 3)]
    with pytest.raises(ValueError, match="between 1 and the number of heads"):
        top_k_heads(scores, 13)
    scores[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        top_k_heads(scores, 2)


def test_recurring_heads_keeps_heads_in_the_top_k_of_most_runs():
    runs = [torch.zeros(3, 4) for _ in range(3)]
    for run in runs:
        run[1, 2] = 10.0  # top in every run
    runs[0][0, 0], runs[1][0, 0] = 5.0, 4.0  # top-2 in two runs
    runs[2][2, 3] = 6.0  # only in one run
    result = recurring_heads(runs, k=2)
    assert result.heads == [(1, 2), (0, 0)] and result.min_runs == 2
    assert int(result.counts[1, 2]) == 3 and int(result.counts[0, 0]) == 2 and int(result.counts[2, 3]) == 1
    assert torch.allclose(result.overlap.diagonal(), torch.ones(3))
    assert float(result.overlap[0, 2]) == pytest.approx(0.5)
    assert recurring_heads(runs, k=2, min_runs=3).heads == [(1, 2)]
    with pytest.raises(ValueError, match="No head is in the top"):
        recurring_heads([torch.eye(3, 4), torch.eye(3, 4).flip(0)], k=1, min_runs=2)
