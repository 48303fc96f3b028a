"""Named contrasts with fixed train/test splits: the one place the studies get their pairs from.

``"gender"``, ``"race"``, ``"religion"``, ``"profession"``: StereoSet dev pairs (intra- and
intersentence) of that bias type, positive = stereotype; ``"gender_prompts"``: the project's templated
gender set (:func:`lens_bias.data.gender_prompts.gender_pairs`); ``"refusal"``: refusal vs compliance
answers to harmful requests (:func:`lens_bias.data.refusal.refusal_pairs`, rendered with a chat template by
the caller). Every split is by target term (:func:`split_by_target`); each side is then subsampled with a
fixed seed (:func:`lens_bias.data.sampling.sample`, sorted by pair id), so a vector built on ``train`` and
measured on ``test`` never shares a target term between the two.
"""

from __future__ import annotations

from dataclasses import dataclass

from lens_bias.data.gender_prompts import gender_pairs
from lens_bias.data.records import ContrastPair, fingerprint, split_by_target
from lens_bias.data.refusal import refusal_pairs, refusal_requests
from lens_bias.data.sampling import sample
from lens_bias.data.stereoset import BIAS_TYPES, load_stereoset, stereoset_pairs
from lens_bias.errors import InputError

CONTRASTS = (*BIAS_TYPES, "gender_prompts", "refusal")


@dataclass(frozen=True)
class ContrastSplit:
    """Train and test pairs of one named contrast; ``chat`` says whether the pairs are user prompts with
    answer starts (render with a chat template) or raw text to score as is."""

    name: str
    train: list[ContrastPair]
    test: list[ContrastPair]
    chat: bool

    def describe(self) -> dict:
        return {
            "name": self.name,
            "n_train": len(self.train),
            "n_test": len(self.test),
            "chat": self.chat,
            "train_fingerprint": fingerprint(self.train),
            "test_fingerprint": fingerprint(self.test),
        }


def _by_id(pair: ContrastPair) -> str:
    return pair.id


def contrast_split(
    name: str, *, n_train: int | None = None, n_test: int | None = None, test_fraction: float = 0.3, seed: int = 0
) -> ContrastSplit:
    """The train/test pairs of contrast ``name`` (``n_train``/``n_test`` = None keeps all)."""
    if name in BIAS_TYPES:
        pairs, chat = stereoset_pairs(load_stereoset(bias_types=[name])), False
    elif name == "gender_prompts":
        pairs, chat = gender_pairs(), False
    elif name == "refusal":
        pairs, chat = refusal_pairs(refusal_requests()), True
    else:
        raise InputError(f"Unknown contrast {name!r}: use one of {', '.join(CONTRASTS)}.")
    train, test = split_by_target(pairs, test_fraction, seed)
    return ContrastSplit(name, sample(train, n_train, seed, key=_by_id), sample(test, n_test, seed, key=_by_id), chat)
