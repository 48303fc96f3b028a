"""A model's bias profile: per StereoSet bias type, its preference for the stereotype on held-out pairs.

:func:`bias_profile` measures, per bias type, on held-out StereoSet pairs (intra- and intersentence, split by
target term, :func:`held_out_pairs`) the likelihood preference (:func:`lens_bias.metrics.likelihood_preference`:
mean per-token log P(stereotype) - log P(anti-stereotype), nats, and the share preferring the stereotype) and
the A/B choice (:func:`lens_bias.metrics.ab_preference`: P(stereotyped option), the position bias and the format
mass), all with bootstrap 95% intervals. :func:`summarize` prints saved values, one line per bias type.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lens_bias.data.records import ContrastPair, fingerprint, split_by_target, to_ab_items
from lens_bias.data.sampling import sample
from lens_bias.data.stereoset import load_stereoset, stereoset_pairs
from lens_bias.metrics.preference import ab_preference, likelihood_preference
from lens_bias.models import AnyModel
from lens_bias.prompts import ChatTemplate
from lens_bias.stats import Estimate


def held_out_pairs(bias_type: str, n_pairs: int | None, test_fraction: float, seed: int) -> list[ContrastPair]:
    """Held-out StereoSet pairs (intra- and intersentence) of one bias type, split by target term; ``n_pairs``
    of them drawn with ``seed`` (sorted by id), or all for None."""
    _, test = split_by_target(stereoset_pairs(load_stereoset(bias_types=[bias_type])), test_fraction, seed)
    return sample(test, n_pairs, seed, key=lambda pair: pair.id)


def bias_profile(
    model: AnyModel,
    template: ChatTemplate,
    bias_types: Sequence[str],
    n_pairs: int | None,
    test_fraction: float,
    *,
    batch_size: int = 16,
    seed: int = 0,
) -> tuple[dict[str, Any], dict[str, str], list[dict[str, Any]]]:
    """Per bias type, ``{"likelihood": LikelihoodPreference dict, "ab": ABPreference dict}`` on ``n_pairs``
    held-out pairs (None: all; A/B items rendered with ``template``); the pairs' fingerprints by data name; and
    the per-item rows (:meth:`LikelihoodPreference.items`, condition ``baseline``)."""
    per_type, fingerprints, items = {}, {}, []
    for bias_type in bias_types:
        pairs = held_out_pairs(bias_type, n_pairs, test_fraction, seed)
        fingerprints[f"stereoset-{bias_type}-test"] = fingerprint(pairs)
        likelihood = likelihood_preference(
            model, pairs, batch_size=batch_size, seed=seed, progress=f"{bias_type}: likelihood"
        )
        ab = ab_preference(
            model,
            to_ab_items(pairs, seed=seed),
            template,
            batch_size=batch_size,
            seed=seed,
            progress=f"{bias_type}: A/B",
        )
        per_type[bias_type] = {"likelihood": likelihood.to_dict(), "ab": ab.to_dict()}
        items += likelihood.items("baseline")
    return per_type, fingerprints, items


def summarize(values: dict[str, Any]) -> str:
    """One line per bias type of saved profile ``values``: likelihood share and mean difference, A/B choice,
    position bias, format mass."""
    lines = []
    for bias_type, entry in values["per_bias_type"].items():
        likelihood = {k: Estimate.from_dict(v) for k, v in entry["likelihood"].items() if isinstance(v, dict)}
        ab = {k: Estimate.from_dict(v) for k, v in entry["ab"].items() if isinstance(v, dict)}
        lines.append(
            f"{bias_type:>10}: likelihood share {likelihood['share_positive']}, mean diff "
            f"{likelihood['mean_logprob_diff']} | A/B P(stereo) {ab['p_positive']}, position bias "
            f"{ab['position_bias']}, format mass {ab['format_mass']}"
        )
    return "\n".join(lines)
