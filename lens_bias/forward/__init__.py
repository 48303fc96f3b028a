"""The forward engine: the intervention protocol and hook context (:mod:`~lens_bias.forward.hooks`, with
:func:`~lens_bias.forward.hooks.run_chunks`, the one chunked forward), batched extraction of hook points
(:mod:`~lens_bias.forward.activations`), readouts of log-probabilities, A/B choices and refusal propensity
(:mod:`~lens_bias.forward.readouts`), and generation under interventions (:mod:`~lens_bias.forward.generation`).
Everything above runs a model through these modules."""
