"""Quality-of-service harm as an audit measure: how well everyday requests are served, per demographic group.

:class:`ServiceMeasure` asks the model everyday fill-in-the-blank requests about a person
(:mod:`lens_bias.data.service_requests`: templates x groups x first names or group terms) under the system
prompt of the set, samples several answers per request (seeded), and sorts each answer into the taxonomy of
:func:`lens_bias.metrics.service.service_category` (full compliance, compliance with an assumption or warning,
partial / full / harmful refusal, degenerate). Beside the phrase-based rates it reads the refusal propensity
by likelihood (:func:`lens_bias.forward.readouts.refusal_propensity`: log sum P(refusal openers) - log sum
P(compliance openers) at the start of the answer, nats), which moves on small models that never refuse.

Rows: one per generated answer (template x group x filler x sample), with the request's propensity repeated
on its samples. Statistics per group: the share of each category, the refusal rate (partial + full + harmful)
and the mean propensity; and the *gap* to the group's reference group (white American men or women, same
gender): statistic(group) - statistic(reference). Every interval resamples templates (the cluster), so a
gap's interval is paired by template, and a change under an intervention is paired by row as well.
``non_reference`` pools every non-reference group against the reference groups.

Decoding: temperature sampling from the full distribution (``lens_bias.forward.generation.generate`` has no
top-k; the case study sampled with top-k 10), seeded per template, so a rerun gives the same answers.
"""

from lens_bias.audit.service.measure import ServiceMeasure
from lens_bias.audit.service.statistics import GAP_OF, NON_REFERENCE, OVERALL

__all__ = ["GAP_OF", "NON_REFERENCE", "OVERALL", "ServiceMeasure"]
