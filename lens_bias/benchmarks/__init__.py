"""One scorer per benchmark: the model's raw scores on a benchmark's items, for every study that needs them.

* :mod:`lens_bias.benchmarks.stereoset`: each option's mean per-token log-probability (SS, LMS, ICAT are
  computed from them by :func:`lens_bias.data.stereoset.stereoset_statistics`).
* :mod:`lens_bias.benchmarks.crows_pairs`: each sentence's whole-sentence and shared-token log-likelihood
  (and, when asked, the whole sentence after lm-evaluation-harness's start token).
* :mod:`lens_bias.benchmarks.bbq`: each option's log-probability after a named prompt format, and the
  letter readout; and each of lm-evaluation-harness's 12 choices after its own prompt.

The audit's measures (:mod:`lens_bias.audit`) and the side-effect readouts (:mod:`lens_bias.side_effects`)
both call these; a scorer never aggregates (the statistics live with the data module or the measure). Each
module names its scoring version (in every cell key) and its prompt formats. The named *scoring
conventions* (``authors``, the default; ``harness``; ``lens_bias``) live next to the rules they choose
between: CrowS-Pairs' in :mod:`lens_bias.benchmarks.crows_pairs` (which scores they compare), BBQ's in
:mod:`lens_bias.data.bbq` (which answer is biased, what is dropped, how questions are grouped; the
harness's in :mod:`lens_bias.data.bbq_harness`), StereoSet's one (the official scorer) in
:mod:`lens_bias.audit.stereoset`.
"""
