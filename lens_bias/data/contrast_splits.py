"""Named contrasts with fixed train/test splits: the one place the studies get their pairs from.

``"gender"``, ``"race"``, ``"religion"``, ``"profession"``: StereoSet dev pairs (intra- and
intersentence) of that bias type, positive = stereotype; ``"gender_prompts"``: the project's templated
gender set (:func:`lens_bias.data.gender_prompts.gender_pairs`); ``"refusal"``: refusal vs compliance
answers to harmful requests (:func:`lens_bias.data.refusal.refusal_pairs`, rendered with a chat template by
the caller). Every split is by target term (:func:`split_by_target`); each side is then subsampled with a
fixed seed (:func:`lens_bias.data.sampling.sample`, sorted by pair id), so a vector built on ``train`` and
measured on ``test`` never shares a target term between the two. Your own pairs (a table: CSV, JSONL,
Parquet, a DataFrame or a ``datasets.Dataset``, :mod:`lens_bias.data.tables`) split the same way, one contrast
per ``bias_type`` (:func:`own_splits`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lens_bias.data.gender_prompts import gender_pairs
from lens_bias.data.records import ContrastPair, fingerprint, split_by_target
from lens_bias.data.refusal import refusal_pairs, refusal_requests
from lens_bias.data.sampling import sample
from lens_bias.data.stereoset import BIAS_TYPES, load_stereoset, stereoset_pairs
from lens_bias.data.tables import load_pairs
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
    return _split(name, pairs, chat, n_train, n_test, test_fraction, seed)


def _split(
    name: str,
    pairs: Sequence[ContrastPair],
    chat: bool,
    n_train: int | None,
    n_test: int | None,
    test_fraction: float,
    seed: int,
) -> ContrastSplit:
    train, test = split_by_target(pairs, test_fraction, seed)
    return ContrastSplit(name, sample(train, n_train, seed, key=_by_id), sample(test, n_test, seed, key=_by_id), chat)


def own_splits(
    source: Any,
    columns: Mapping[str, str] | Sequence[str] | None = None,
    *,
    n_train: int | None = None,
    n_test: int | None = None,
    test_fraction: float = 0.3,
    seed: int = 0,
) -> dict[str, ContrastSplit]:
    """Your own contrast pairs (a table, :func:`lens_bias.data.tables.load_pairs`), one split per ``bias_type``
    (in the order of first appearance; a table without that column is one contrast, ``custom``), split and
    sampled as :func:`contrast_split` does. Raw text (``chat`` False). Each bias type needs two target terms."""
    pairs = load_pairs(source, columns)
    by_type: dict[str, list[ContrastPair]] = {}
    for pair in pairs:
        by_type.setdefault(pair.bias_type, []).append(pair)
    return {name: _split(name, group, False, n_train, n_test, test_fraction, seed) for name, group in by_type.items()}
