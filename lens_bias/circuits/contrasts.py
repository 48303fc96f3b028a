"""The contrasts a circuit is found for, by name (:func:`select_contrast`, :func:`contrast_names`).

* ``gender_swap``: the gender-pronoun term-swap pairs of one template (:func:`lens_bias.patching.select_pairs`):
  clean = a term stereotyped one way, corrupted = one stereotyped the other way; metric = logit(clean's
  stereotyped pronoun) - logit(the other) at the last token (nats).
* ``gender_definitional``: its control, the same template with definitional gender nouns ("The woman ..." /
  "The man ..."; :func:`lens_bias.data.gender_swap.definitional_pairs`), metric logit(the clean noun's pronoun)
  - logit(the other): the edges that carry a stated gender, not a stereotype.
* ``stereoset:<bias type>``: StereoSet's intrasentence items of that bias type (dev split; gender, profession,
  race, religion), clean = the stereotype sentence, corrupted = the anti-stereotype;
* ``crows_pairs:<bias type>``: CrowS-Pairs pairs of that bias type, clean = the more stereotyping sentence.

The last two are minimal sentence pairs (:func:`lens_bias.patching.minimal_pair_inputs`: one swapped span of
the same token length, a shared continuation after it); their metric is the log-probability of the shared
continuation (nats), so clean - corrupted is the stereotype-vs-anti log-probability difference. Every
contrast is screened for pairs whose clean - corrupted metric is at least ``min_gap`` (the model shows the
bias there).
"""

from __future__ import annotations

from typing import Any

from transformer_lens import HookedTransformer

from lens_bias.data import CROWS_BIAS_TYPES, STEREOSET_BIAS_TYPES, load_stereoset, stereoset_pairs
from lens_bias.errors import InputError
from lens_bias.patching.screening import Inputs, select_crows_pairs, select_gender_swap_pairs


def contrast_names() -> tuple[str, ...]:
    """Every contrast name: ``gender_swap``, ``gender_definitional``, ``stereoset:<type>`` and
    ``crows_pairs:<type>`` per bias type."""
    return (
        "gender_swap",
        "gender_definitional",
        *(f"stereoset:{kind}" for kind in STEREOSET_BIAS_TYPES),
        *(f"crows_pairs:{kind}" for kind in CROWS_BIAS_TYPES),
    )


def check_contrasts(names: tuple[str, ...] | list[str]) -> None:
    """InputError unless ``names`` is a non-empty list of distinct :func:`contrast_names`."""
    unknown = [name for name in names if name not in contrast_names()]
    if not names or unknown or len(set(names)) != len(names):
        raise InputError(
            f"Contrasts must be distinct names among {', '.join(contrast_names())}; got {list(names)}"
            + (f" (unknown: {unknown})." if unknown else ".")
        )


def select_contrast(
    model: HookedTransformer,
    name: str,
    *,
    group: str = "occupation-t0",
    n_pairs: int | None,
    min_gap: float,
    seed: int = 0,
    batch_size: int = 64,
) -> tuple[Inputs, dict[str, int | float]]:
    """The screened pairs of contrast ``name`` (module docstring; ``group``: the gender_swap template) and
    the counts of every selection step."""
    check_contrasts([name])
    screening: dict[str, Any] = {"n_pairs": n_pairs, "min_gap": min_gap, "seed": seed, "batch_size": batch_size}
    source, _, bias_type = name.partition(":")
    if source in ("gender_swap", "gender_definitional"):
        return select_gender_swap_pairs(model, group, definitional=source == "gender_definitional", **screening)
    if source == "crows_pairs":
        return select_crows_pairs(model, [bias_type], **screening)
    pairs = stereoset_pairs(load_stereoset("intrasentence", [bias_type]))
    return select_crows_pairs(model, None, pairs=pairs, **screening)


def select_contrasts(
    model: HookedTransformer, names: tuple[str, ...] | list[str], **selection: Any
) -> tuple[dict[str, Inputs], dict[str, dict[str, int | float]]]:
    """:func:`select_contrast` of each name (``selection``: its keywords): the inputs and the counts by name."""
    check_contrasts(names)
    chosen = {name: select_contrast(model, name, **selection) for name in names}
    return {name: inputs for name, (inputs, _) in chosen.items()}, {
        name: counts for name, (_, counts) in chosen.items()
    }
