"""Your own data: the same pairs from CSV, JSONL, JSON, Parquet, a DataFrame, a datasets.Dataset and dicts; a
column mapping; one clear error naming a missing column (and the columns present), a wrong type or a repeated id;
own splits by target term; sentence pairs and BBQ-style questions."""

from __future__ import annotations

from pathlib import Path

import datasets
import pandas as pd
import pytest

from lens_bias.data import load_bbq_items, load_pairs, load_sentence_pairs, own_splits
from lens_bias.data.records import ContrastPair
from lens_bias.data.tables import pairs_as_sentences, parse_columns
from lens_bias.errors import InputError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pairs.csv"


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.read_csv(EXAMPLE, dtype=str, keep_default_na=False)


def test_every_table_format_gives_the_same_pairs(frame, tmp_path):
    frame.to_json(tmp_path / "pairs.jsonl", orient="records", lines=True)
    frame.to_json(tmp_path / "pairs.json", orient="records")
    frame.to_parquet(tmp_path / "pairs.parquet")
    from_csv = load_pairs(EXAMPLE)
    assert len(from_csv) == 18 and from_csv[0] == ContrastPair(
        "n1", "gender", "nurse", "The nurse said that", " she would be late.", " he would be late.", "own:pairs"
    )
    for source in ("pairs.jsonl", "pairs.json", "pairs.parquet"):
        assert load_pairs(tmp_path / source) == from_csv
    fields = ["id", "bias_type", "target", "prompt", "positive", "negative"]
    in_memory = [frame, datasets.Dataset.from_pandas(frame), frame.to_dict("records")]
    for table in in_memory:
        assert [[getattr(p, f) for f in fields] for p in load_pairs(table)] == frame[fields].values.tolist()
    assert load_pairs(from_csv) == from_csv  # records pass through


def test_a_column_mapping_and_the_defaults(tmp_path):
    table = pd.DataFrame({"stereo": [" she", " he"], "anti": [" he", " she"], "group": ["nurse", "pilot"]})
    table.to_csv(tmp_path / "mine.csv", index=False)
    pairs = load_pairs(tmp_path / "mine.csv", ["positive=stereo", "negative=anti", "target=group"])
    assert pairs == [
        ContrastPair("0", "custom", "nurse", "", " she", " he", "own:mine"),
        ContrastPair("1", "custom", "pilot", "", " he", " she", "own:mine"),
    ]
    in_memory = load_pairs(table, {"positive": "stereo", "negative": "anti", "target": "group"})
    assert [(p.id, p.positive, p.source) for p in in_memory] == [("0", " she", "own:table"), ("1", " he", "own:table")]
    assert parse_columns(["a=b", "c=d"]) == {"a": "b", "c": "d"}


@pytest.mark.parametrize(
    "table, columns, message",
    [
        ({"pos": ["a"], "negative": ["b"], "target": ["t"]}, None, r"missing column 'positive'.*present are 'pos'"),
        ({"s": ["a"], "negative": ["b"], "target": ["t"]}, {"positive": "x"}, r"'x' \(for positive\)"),
        ({"positive": [1.5], "negative": ["b"], "target": ["t"]}, None, "row 0: positive must be text, got float"),
        (
            {"positive": ["a"], "negative": [""], "target": ["t"]},
            None,
            r"row 0: column 'negative' \(negative\) is empty",
        ),
        ({"positive": ["a", "c"], "negative": ["b", "d"], "target": ["t", "u"], "id": [1, 1]}, None, "repeated: 1"),
        ({"positive": ["a"], "negative": ["a"], "target": ["t"]}, None, "row 0: .*identical"),
        ({"positive": ["a"], "negative": ["b"], "target": ["t"]}, {"answer": "a"}, "unknown field"),
    ],
)
def test_bad_tables_end_in_one_clear_error(table, columns, message):
    with pytest.raises(InputError, match=message):
        load_pairs(pd.DataFrame(table), columns)


def test_bad_files_end_in_one_clear_error(tmp_path):
    (tmp_path / "pairs.txt").write_text("positive,negative\n")
    (tmp_path / "broken.jsonl").write_text('{"positive": "a",\n')
    for path, message in [
        (tmp_path / "none.csv", "no such file"),
        (tmp_path / "pairs.txt", "unknown table format '.txt'"),
        (tmp_path / "broken.jsonl", "cannot be read as jsonl"),
    ]:
        with pytest.raises(InputError, match=message):
            load_pairs(path)
    with pytest.raises(InputError, match="Cannot read int as a table"):
        load_pairs(3)


def test_own_splits_are_by_target_per_bias_type():
    splits = own_splits(EXAMPLE, seed=0)
    assert list(splits) == ["gender", "age"]
    for split in splits.values():
        assert split.train and split.test and not split.chat
        assert not {p.target for p in split.train} & {p.target for p in split.test}
    again = own_splits(EXAMPLE, n_train=3, seed=0)["gender"]
    assert len(again.train) == 3 and again.test == splits["gender"].test


def test_sentence_pairs_and_bbq_items():
    pairs = load_sentence_pairs([{"sent_more": "Old men are slow. ", "sent_less": "Young men are slow."}])
    assert (pairs[0].id, pairs[0].bias_type, pairs[0].sent_more, pairs[0].direction) == (
        "0",
        "custom",
        "Old men are slow.",
        "stereo",
    )
    sentences = pairs_as_sentences(load_pairs(EXAMPLE)[:1])
    assert sentences[0].sent_more == "The nurse said that she would be late."
    row = {"context": "A and B met.", "question": "Who was late?", "ans0": "A", "ans1": "B", "ans2": "Unknown"}
    items = load_bbq_items([row | {"label": "2", "unknown_index": 2, "context_condition": "ambig", "target_index": 0}])
    item = items[0]
    assert (item.uid, item.answers, item.label, item.target_index, item.biased_index) == (
        "custom-0",
        ("A", "B", "Unknown"),
        2,
        0,
        0,
    )
    with pytest.raises(InputError, match="label, unknown_index and target_index must be 0, 1 or 2"):
        load_bbq_items([row | {"label": 3, "unknown_index": 2, "context_condition": "ambig"}])
    with pytest.raises(InputError, match="missing column 'label', 'unknown_index', 'context_condition'"):
        load_bbq_items([row])
