"""Measurements: bias preferences with bootstrap intervals; offline scores and classifiers of generations."""

from lens_bias.metrics.preference import ABPreference, LikelihoodPreference, ab_preference, likelihood_preference

__all__ = ["ABPreference", "LikelihoodPreference", "ab_preference", "likelihood_preference"]
