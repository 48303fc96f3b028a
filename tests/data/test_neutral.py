"""Tests for the neutral sentences of the fluency readout."""

from __future__ import annotations

import re

from lens_bias.data.neutral import neutral_texts
from lens_bias.metrics.responses import is_refusal, response_category


def test_neutral_texts():
    texts = neutral_texts()
    assert len(texts) >= 100 and len(set(texts)) == len(texts)
    gendered = re.compile(r"\b(?:she|he|her|him|his|hers|herself|himself|man|woman|men|women)\b", re.I)
    for text in texts:
        assert text[0].isupper() and text.endswith(".")
        assert not gendered.search(text), text
        assert not is_refusal(text)
        assert response_category(text) == "full_compliance"


def test_neutral_texts_is_a_fresh_list():
    texts = neutral_texts()
    texts.clear()
    assert len(neutral_texts()) == 110
