"""Fixtures of the audit's tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def few_resamples(monkeypatch):
    """200 bootstrap replicates per interval instead of the audit's 1,000: for tests that compare the fast
    (summed-columns) bootstrap with ``compute`` per replicate, whose equality does not depend on the count."""
    monkeypatch.setattr("lens_bias.audit.base.N_RESAMPLES", 200)
