"""Figures: plotting primitives (:mod:`~lens_bias.figures.primitives`: HTML + PNG with a caption sidecar,
heatmaps, lines with intervals) and one module per study that draws its saved results. The top layer of the
library: measures, methods and experiments return data; only this package draws it."""
