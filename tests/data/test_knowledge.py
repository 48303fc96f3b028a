"""The knowledge cloze questions: 208 unique, balanced items with 4 distinct options each, and a loader that
names the bad entry of a malformed file."""

from __future__ import annotations

from collections import Counter

import pytest

from lens_bias.data.knowledge import KnowledgeItem, knowledge_domains, knowledge_items, parse_knowledge
from lens_bias.data.resources import load_resource
from lens_bias.errors import InputError


def test_items_are_unique_balanced_and_well_formed():
    items = knowledge_items()
    assert len(items) == 208
    assert Counter(item.domain for item in items) == {domain: 26 for domain in knowledge_domains()}
    assert len(knowledge_domains()) == 8
    assert len({item.id for item in items}) == len(items)
    assert len({item.prompt for item in items}) == len(items)
    for item in items:
        assert len(item.distractors) == 3 and item.answer not in item.distractors
        assert len({option.casefold() for option in item.options}) == 4
        assert item.prompt == item.prompt.strip() and all(option == option.strip() for option in item.options)
        if item.prompt.endswith(" an"):  # no article gives the answer away
            assert all(option[0].lower() in "aeiou" for option in item.options), item.id
    assert items[0] == KnowledgeItem(
        "geo-01", "geography", "The capital of France is", "Paris", ("Madrid", "Rome", "Berlin")
    )
    assert items[0].continuations == (" Paris", " Madrid", " Rome", " Berlin")
    assert knowledge_items() == items and knowledge_items() is not items  # cached, a fresh list per call


def entry(**changes):
    item = {"id": "x-01", "domain": "geography", "prompt": "The capital of France is", "answer": "Paris"}
    return {**item, "distractors": ["Madrid", "Rome", "Berlin"], **changes}


@pytest.mark.parametrize(
    "entries, message",
    [
        (
            [entry(distractors=["Madrid", "Rome"])],
            r"knowledge item 0 \('x-01'\): 'distractors' must be a list of exactly 3",
        ),
        ([entry(distractors=["Madrid", "paris", "Rome"])], r"'x-01'.*must be 4 distinct options"),
        ([entry(domain="sport")], r"'x-01'.*domain 'sport' is not one of the declared domains"),
        ([entry(answer=" Paris")], r"'x-01'.*'answer' must be a non-empty string without surrounding spaces"),
        ([entry(prompt="")], r"'prompt' must be a non-empty string"),
        ([entry(answer=7)], r"'answer' must be a non-empty string"),
        ([{k: v for k, v in entry().items() if k != "answer"}], r"must have exactly the keys id, domain, prompt"),
        (["The capital of France is Paris"], r"knowledge item 0 must be a mapping"),
        (
            [entry(), entry(prompt="The capital of Spain is", answer="Madrid", distractors=["a", "b", "c"])],
            r"'x-01'.*id",
        ),
        ([entry(), entry(id="x-02")], r"'x-02': its prompt 'The capital of France is' is a duplicate"),
        ([], r"non-empty 'items' list"),
    ],
)
def test_the_loader_names_the_bad_entry(entries, message):
    with pytest.raises(InputError, match=message):
        parse_knowledge({"domains": ["geography"], "items": entries})


def test_the_resource_parses_to_the_cached_items():
    assert list(parse_knowledge(load_resource("knowledge"))) == knowledge_items()
