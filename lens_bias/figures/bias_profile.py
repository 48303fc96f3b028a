"""The bias profile's figure, drawn from its saved Result (:func:`lens_bias.metrics.bias_profile.bias_profile`)."""

from __future__ import annotations

import plotly.graph_objects as go

from lens_bias.figures.primitives import bars_with_ci
from lens_bias.provenance import Result
from lens_bias.stats import Estimate


def draw(result: Result) -> go.Figure:
    """Per bias type, bars of the likelihood share preferring the stereotype, the A/B P(stereotyped option)
    and the A/B position bias P(A), with 95% intervals (0.5 = no preference)."""
    types = list(result.values["per_bias_type"])
    per = result.values["per_bias_type"]
    series = {
        "likelihood: share preferring stereotype": [
            Estimate.from_dict(per[t]["likelihood"]["share_positive"]) for t in types
        ],
        "A/B: P(stereotyped option)": [Estimate.from_dict(per[t]["ab"]["p_positive"]) for t in types],
        "A/B: position bias P(A)": [Estimate.from_dict(per[t]["ab"]["position_bias"]) for t in types],
    }
    model = result.provenance["model"]["name"]
    return bars_with_ci(
        types,
        series,
        title=f"Preference for the stereotype on held-out StereoSet pairs ({model})",
        y_title="share / probability (0.5 = no preference)",
        reference_line=0.5,
    )
