"""Per-token log-probabilities with shared prefixes: equal to one plain forward per sequence, fewer tokens run."""

import pytest
import torch

from lens_bias.errors import InputError
from lens_bias.forward.readouts import batch_logprobs, token_logprobs
from lens_bias.forward.shared_prefix import shared_prefix_logprobs
from lens_bias.prompts import continuation_batch


def _plain(model, sequence: torch.Tensor, start: int) -> torch.Tensor:
    """log P(token t | tokens before it) for t >= start, from one forward of the sequence alone."""
    with torch.inference_mode():
        logprobs = model(sequence[None]).float().log_softmax(-1)[0]
    return logprobs[start - 1 : -1].gather(-1, sequence[start:, None])[:, 0]


def _sequences() -> tuple[list[torch.Tensor], list[int]]:
    """Sequences that begin alike (three sharing 6 tokens, two sharing 4), lone ones, one of 2 tokens; starts
    inside, at the end of and after the shared prefix (both of the second group's after it)."""
    g = torch.Generator().manual_seed(0)
    head, other = torch.randint(3, 400, (6,), generator=g), torch.randint(3, 400, (4,), generator=g)
    tails = [torch.randint(3, 400, (n,), generator=g) for n in (3, 5, 1, 4, 6)]
    sequences = [
        torch.cat([head, tails[0]]),
        torch.cat([head, tails[1]]),
        torch.cat([head, tails[2]]),
        torch.cat([other, tails[3]]),
        torch.cat([other, tails[4]]),
        torch.randint(3, 400, (9,), generator=g),
        torch.randint(3, 400, (2,), generator=g),
    ]
    return sequences, [1, 3, 6, 7, 8, 1, 1]


@pytest.mark.parametrize("batch_size", [1, 2, 16])
def test_shared_prefix_logprobs_equal_one_forward_per_sequence(tiny_model, batch_size):
    sequences, starts = _sequences()
    scores = shared_prefix_logprobs(tiny_model, sequences, starts, pad=2, batch_size=batch_size)
    for sequence, start, got in zip(sequences, starts, scores):
        want = _plain(tiny_model, sequence, start)
        assert got.shape == want.shape
        assert torch.allclose(got, want, atol=1e-4), (got - want).abs().max()


def test_shared_prefixes_run_fewer_tokens(tiny_model):
    """The three sequences that share 6 tokens run them once: fewer real tokens pass the embedding than the
    sequences hold."""
    sequences, starts = _sequences()
    seen = []

    def count(tokens, hook):
        seen.append(tokens.shape[0] * tokens.shape[1])

    with tiny_model.hooks(fwd_hooks=[("hook_embed", count)]):
        shared_prefix_logprobs(tiny_model, sequences[:3], starts[:3], pad=2, batch_size=16)
    # one prefix forward of 6 tokens, then the three members' own tokens but their last (2 + 4 + 0, padded to 4)
    assert seen == [6, 2 * 4]
    assert sum(seen) < sum(len(s) for s in sequences[:3])


def test_readouts_use_shared_prefixes_and_keep_their_results(tiny_model):
    """token_logprobs and batch_logprobs (no intervention) read the same numbers as plain forwards."""
    texts = ["The nurse said that she was late", "The nurse said that he was late", "A cat sat", "The nurse"]
    got = token_logprobs(tiny_model, texts, batch_size=4)
    batch = continuation_batch(tiny_model.tokenizer, [""] * len(texts), texts)
    for i in range(len(texts)):
        sequence = batch.tokens[i, : batch.lengths[i]]
        assert torch.equal(got.tokens[i], sequence[1:])
        assert torch.allclose(got.logprobs[i], _plain(tiny_model, sequence, 1), atol=1e-4)
    prompts = ["The nurse said that", "The nurse said that", "A cat"]
    continuation = continuation_batch(tiny_model.tokenizer, prompts, [" she was", " he was late", " sat"])
    sums = batch_logprobs(tiny_model, continuation, batch_size=4)
    for i in range(len(prompts)):
        sequence = continuation.tokens[i, : continuation.lengths[i]]
        want = _plain(tiny_model, sequence, int(continuation.positions["continuation"][i]))
        assert torch.isclose(sums.total[i], want.sum(), atol=1e-4)
        assert sums.n_tokens[i] == len(want)


def test_bad_input_is_one_clear_error(tiny_model):
    sequence = torch.tensor([5, 6, 7])
    with pytest.raises(InputError, match="1 <= start < length"):
        shared_prefix_logprobs(tiny_model, [sequence], [0], pad=2)
    with pytest.raises(InputError, match="1 <= start < length"):
        shared_prefix_logprobs(tiny_model, [torch.tensor([5])], [1], pad=2)
    with pytest.raises(InputError, match="pair up"):
        shared_prefix_logprobs(tiny_model, [sequence], [1, 2], pad=2)
    with pytest.raises(InputError, match="context"):
        shared_prefix_logprobs(tiny_model, [torch.full((tiny_model.cfg.n_ctx + 1,), 5)], [1], pad=2)
