"""The forward engine: the intervention protocol and hook context (:mod:`~lens_bias.forward.hooks`, with
:func:`~lens_bias.forward.hooks.run_chunks`, the one chunked forward), batched extraction of hook points
(:mod:`~lens_bias.forward.activations`), readouts of log-probabilities, A/B choices and refusal propensity
(:mod:`~lens_bias.forward.readouts`), and generation under interventions (:mod:`~lens_bias.forward.generation`).
Work is not done twice: prompts that begin alike are grouped (:mod:`~lens_bias.forward.prefixes`), run once into a
KV cache (:mod:`~lens_bias.forward.kv_cache`) and continued from it (:mod:`~lens_bias.forward.shared_prefix`).
Everything above runs a model through these modules."""
