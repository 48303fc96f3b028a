"""StereoSet's scorer: the mean per-token log-probability of each item's three options.

Every option (stereotype, anti-stereotype, unrelated) is scored by its mean per-token log-probability
(nats/token); bias-bench's GPT-2 runner ranks by the geometric mean of the token probabilities, which
orders the options the same way. The texts are :func:`lens_bias.data.stereoset.option_texts`:
intrasentence options as whole sentences from the document-start token
(:func:`lens_bias.forward.readouts.continuation_logprobs`), intersentence options as ``' ' + sentence``
after the context, whose one forward serves the three options
(:func:`lens_bias.forward.readouts.shared_prompt_logprobs`). The statistics (SS, LMS, ICAT) are
:func:`lens_bias.data.stereoset.stereoset_statistics` of these scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from jaxtyping import Float

from lens_bias.data.stereoset import StereoSetItem, option_texts
from lens_bias.errors import InputError
from lens_bias.forward.readouts import continuation_logprobs, shared_prompt_logprobs
from lens_bias.interventions import Intervention
from lens_bias.models import AnyModel

SCORING_VERSION = "stereoset-mean-token-logprob/1"
"""Changes whenever the scored texts or the option score change (it is in every cell key)."""
OPTIONS = ("stereotype", "anti_stereotype", "unrelated")


def score_stereoset(
    model: AnyModel,
    items: Sequence[StereoSetItem],
    *,
    interventions: Sequence[Intervention] = (),
    batch_size: int = 16,
    progress: bool | str = False,
) -> Float[np.ndarray, "n 3"]:
    """``[n, 3]`` mean per-token log-probability (nats/token) of each item's stereotype, anti-stereotype
    and unrelated option (see the module docstring)."""
    if not items:
        raise InputError("No StereoSet items to score.")
    scores = np.full((len(items), len(OPTIONS)), np.nan)
    options = [option_texts(item) for item in items]
    intra = [i for i, item in enumerate(items) if item.kind == "intrasentence"]
    inter = [i for i, item in enumerate(items) if item.kind == "intersentence"]
    kwargs: dict[str, Any] = {"interventions": interventions, "batch_size": batch_size, "progress": progress}
    if intra:
        texts = [text for i in intra for text in options[i][1]]
        mean = continuation_logprobs(model, [""] * len(texts), texts, **kwargs).mean
        scores[intra] = mean.double().numpy().reshape(len(intra), len(OPTIONS))
    if inter:
        prompts, answers = [options[i][0] for i in inter], [list(options[i][1]) for i in inter]
        mean = shared_prompt_logprobs(model, None, prompts, answers, **kwargs).mean
        scores[inter] = mean.double().numpy().reshape(len(inter), len(OPTIONS))
    return scores
