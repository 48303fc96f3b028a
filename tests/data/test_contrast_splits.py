"""Named contrast splits: disjoint targets, fixed subsamples, clear errors."""

import pytest

from lens_bias.data import CONTRASTS, contrast_split


@pytest.mark.parametrize("name", CONTRASTS)
def test_every_contrast_splits_by_target(name):
    split = contrast_split(name, n_train=40, n_test=30, seed=0)
    assert 0 < len(split.train) <= 40 and 0 < len(split.test) <= 30
    assert not {p.target for p in split.train} & {p.target for p in split.test}
    assert split == contrast_split(name, n_train=40, n_test=30, seed=0)
    assert split.chat == (name == "refusal")
    assert split.describe()["train_fingerprint"] != split.describe()["test_fingerprint"]


def test_all_pairs_for_none_and_a_clear_error_for_zero():
    split = contrast_split("gender_prompts", seed=0)
    assert len(split.train) + len(split.test) == 340
    assert split == contrast_split("gender_prompts", n_train=10**6, n_test=None, seed=0)
    with pytest.raises(ValueError, match="None"):
        contrast_split("gender_prompts", n_train=0)


def test_unknown_contrast_lists_the_names():
    with pytest.raises(ValueError, match="gender_prompts"):
        contrast_split("nationality")
