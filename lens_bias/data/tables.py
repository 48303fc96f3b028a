"""Your own data: contrast pairs, sentence pairs and BBQ-style questions from a table, with a column mapping.

A *table* is a CSV, JSON Lines (``.jsonl``), JSON (an array of objects) or Parquet file, a pandas
``DataFrame``, a Hugging Face ``datasets.Dataset`` or a list of dicts. Each record type has named fields
(:data:`PAIR_FIELDS`, :data:`SENTENCE_PAIR_FIELDS`, :data:`BBQ_FIELDS`), some required, some with a
default; a field is read from the column of its own name unless ``columns`` maps it to another
(``{"positive": "stereotype", "target": "group"}``; on the command line ``--columns positive=stereotype
target=group``). A missing column, a value of the wrong type, an empty text or a repeated id ends in one
:class:`lens_bias.errors.InputError` that names the column (and the columns present) or the row, before any
model runs. Ids default to the row number; every table's rows keep their order.

Contrast pairs (:func:`load_pairs`) split like the built-in sets, by target term
(:func:`lens_bias.data.contrast_splits.own_splits`), so put the group a pair is about (the term that
varies: ``nurse``, ``Muslim``, ...) in ``target``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lens_bias.data.bbq import BBQItem
from lens_bias.data.crows_pairs import DIRECTIONS, CrowsPair
from lens_bias.data.records import ContrastPair
from lens_bias.errors import InputError

SUFFIXES = (".csv", ".jsonl", ".json", ".parquet")
#: The ``bias_type`` of records whose table has no such column.
DEFAULT_BIAS_TYPE = "custom"
_REQUIRED = object()


@dataclass(frozen=True)
class Field:
    """One field of a record type: its ``kind`` (``str`` or ``int``) and its default (required without)."""

    name: str
    kind: type
    default: Any = _REQUIRED
    help: str = ""

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED


PAIR_FIELDS = (
    Field("positive", str, help="the continuation a vector or score is named for (e.g. the stereotyped one)"),
    Field("negative", str, help="the other continuation"),
    Field("target", str, help="the group or term the pair is about: the split key"),
    Field("prompt", str, "", "shared text before both continuations ('' scores whole sentences)"),
    Field("id", str, None, "a unique id (default: the row number)"),
    Field("bias_type", str, DEFAULT_BIAS_TYPE, "the contrast the pair belongs to (one vector per bias type)"),
)
SENTENCE_PAIR_FIELDS = (
    Field("sent_more", str, help="the more stereotyping sentence"),
    Field("sent_less", str, help="the less stereotyping sentence"),
    Field("id", str, None, "a unique id (default: the row number)"),
    Field("bias_type", str, DEFAULT_BIAS_TYPE, "the group of the pair in the tables"),
    Field("direction", str, "stereo", "stereo | antistereo (which sentence is about the disadvantaged group)"),
)
BBQ_FIELDS = (
    Field("context", str),
    Field("question", str),
    Field("ans0", str),
    Field("ans1", str),
    Field("ans2", str),
    Field("label", int, help="index (0-2) of the correct answer"),
    Field("unknown_index", int, help="index (0-2) of the 'cannot be determined' answer"),
    Field("context_condition", str, help="ambig | disambig"),
    Field("target_index", int, None, "index of the stereotyped group's answer (default: none)"),
    Field("polarity", str, "neg", "neg | nonneg (the question asks for the negative or the other role)"),
    Field("category", str, DEFAULT_BIAS_TYPE, "the group of the question in the tables"),
    Field("id", int, None, "a unique integer id (default: the row number)"),
    Field("question_index", int, 0, "template number within the category"),
)


def parse_columns(mapping: Sequence[str] | Mapping[str, str] | None) -> dict[str, str]:
    """``["positive=stereo", ...]`` (the command line's ``--columns``) or a dict, as field -> column."""
    if mapping is None:
        return {}
    if isinstance(mapping, Mapping):
        return dict(mapping)
    parsed = {}
    for entry in mapping:
        field, sep, column = entry.partition("=")
        if not sep or not field or not column:
            raise InputError(f"--columns {entry!r}: write FIELD=COLUMN (e.g. positive=stereotype).")
        parsed[field] = column
    return parsed


def read_table(source: Any) -> tuple[list[dict[str, Any]], list[str], str]:
    """``(rows, columns, name)`` of a table (see the module docstring); ``name`` is a file's stem, else
    ``"table"``."""
    if isinstance(source, (str, os.PathLike)):
        return (*_read_file(Path(source)), Path(source).stem)
    if hasattr(source, "column_names") and hasattr(source, "to_list"):  # a datasets.Dataset
        return source.to_list(), list(source.column_names), "table"
    if hasattr(source, "to_dict") and hasattr(source, "columns"):  # a pandas DataFrame
        return source.to_dict("records"), [str(c) for c in source.columns], "table"
    if isinstance(source, Sequence) and all(isinstance(row, Mapping) for row in source):
        columns = list(dict.fromkeys(str(key) for row in source for key in row))
        return [dict(row) for row in source], columns, "table"
    raise InputError(
        f"Cannot read {type(source).__name__} as a table: give a CSV, JSONL, JSON or Parquet path, a pandas "
        "DataFrame, a datasets.Dataset or a list of dicts."
    )


def _read_file(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    import pandas as pd

    if not path.is_file():
        raise InputError(f"{path}: no such file.")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        elif suffix in (".jsonl", ".json"):
            frame = pd.read_json(
                path, lines=suffix == ".jsonl", dtype=False, orient=None if suffix == ".jsonl" else "records"
            )
        elif suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            raise InputError(f"{path}: unknown table format {suffix!r}; use one of {', '.join(SUFFIXES)}.")
    except (ValueError, OSError, UnicodeDecodeError) as error:  # pandas' and pyarrow's parse errors are ValueErrors
        raise InputError(f"{path}: cannot be read as {suffix[1:]} ({type(error).__name__}: {error}).") from error
    return frame.to_dict("records"), [str(c) for c in frame.columns]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or (isinstance(value, str) and not value)


def _convert(value: Any, field: Field, where: str) -> Any:
    """``value`` as the field's kind: texts take strings and integers; integers take integers, integral
    floats and digit strings."""
    if field.kind is str:
        if isinstance(value, str):
            return value
        if (isinstance(value, int) and not isinstance(value, bool)) or type(value).__name__.startswith("int"):
            return str(int(value))
        raise InputError(f"{where}: {field.name} must be text, got {type(value).__name__} {value!r}.")
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not (isinstance(value, int) or type(value).__name__.startswith("int")):
        raise InputError(f"{where}: {field.name} must be an integer, got {type(value).__name__} {value!r}.")
    return int(value)


def table_records(source: Any, fields: Sequence[Field], columns: Mapping[str, str] | Sequence[str] | None = None):
    """``(records, name)``: every row of ``source`` as a dict of ``fields`` (defaults filled in, ``id`` the row
    number where the table has none), read through the ``columns`` mapping (field -> column)."""
    mapping = parse_columns(columns)
    known = {field.name for field in fields}
    unknown = sorted(set(mapping) - known)
    if unknown:
        raise InputError(f"--columns maps unknown field(s) {', '.join(unknown)}: the fields are {', '.join(known)}.")
    rows, present, name = read_table(source)
    where = {field.name: mapping.get(field.name, field.name) for field in fields}
    missing = [
        f"{where[f.name]!r}" + (f" (for {f.name})" if where[f.name] != f.name else "")
        for f in fields
        if f.required and where[f.name] not in present
    ]
    if missing or not rows:
        needed = ", ".join(f.name for f in fields if f.required)
        raise InputError(
            f"{name}: "
            + (f"missing column {', '.join(missing)}" if missing else "no rows")
            + f"; the columns present are {', '.join(map(repr, present)) or 'none'}. It needs {needed} "
            "(map other column names with columns={FIELD: COLUMN}, on the command line --columns FIELD=COLUMN)."
        )
    records = []
    for number, row in enumerate(rows):
        record = {}
        for field in fields:
            value = row.get(where[field.name])
            if _missing(value):
                if field.required:
                    raise InputError(f"{name} row {number}: column {where[field.name]!r} ({field.name}) is empty.")
                value = number if field.name == "id" and field.default is None else field.default
            record[field.name] = None if value is None else _convert(value, field, f"{name} row {number}")
        records.append(record)
    ids = [record["id"] for record in records]
    if len(set(ids)) != len(ids):
        repeated = sorted({str(i) for i in ids if ids.count(i) > 1})[:5]
        raise InputError(f"{name}: ids must be unique; repeated: {', '.join(repeated)}.")
    return records, name


def _made(name: str, number: int, build: Any, **fields: Any) -> Any:
    try:
        return build(**fields)
    except InputError as error:
        raise InputError(f"{name} row {number}: {error}") from error


def load_pairs(source: Any, columns: Mapping[str, str] | Sequence[str] | None = None) -> list[ContrastPair]:
    """Contrast pairs (:data:`PAIR_FIELDS`) from a table; a list of :class:`ContrastPair` comes back as is.
    ``source`` of each pair: ``own:{name}`` (a file's stem)."""
    if isinstance(source, Sequence) and source and all(isinstance(p, ContrastPair) for p in source):
        return list(source)
    records, name = table_records(source, PAIR_FIELDS, columns)
    return [_made(name, i, ContrastPair, **r, source=f"own:{name}") for i, r in enumerate(records)]


def load_sentence_pairs(source: Any, columns: Mapping[str, str] | Sequence[str] | None = None) -> list[CrowsPair]:
    """CrowS-Pairs-style sentence pairs (:data:`SENTENCE_PAIR_FIELDS`) from a table."""
    if isinstance(source, Sequence) and source and all(isinstance(p, CrowsPair) for p in source):
        return list(source)
    records, name = table_records(source, SENTENCE_PAIR_FIELDS, columns)
    for i, record in enumerate(records):
        if record["direction"] not in DIRECTIONS:
            raise InputError(f"{name} row {i}: direction must be one of {', '.join(DIRECTIONS)}.")
        if record["sent_more"].strip() == record["sent_less"].strip():
            raise InputError(f"{name} row {i}: sent_more and sent_less are identical.")
    return [
        CrowsPair(**{**r, "sent_more": r["sent_more"].strip(), "sent_less": r["sent_less"].strip()}) for r in records
    ]


def pairs_as_sentences(pairs: Sequence[ContrastPair]) -> list[CrowsPair]:
    """Contrast pairs as sentence pairs: ``prompt + positive`` the more stereotyping sentence."""
    return [
        CrowsPair(p.id, p.bias_type, (p.prompt + p.positive).strip(), (p.prompt + p.negative).strip(), "stereo")
        for p in pairs
    ]


def load_bbq_items(source: Any, columns: Mapping[str, str] | Sequence[str] | None = None) -> list[BBQItem]:
    """BBQ-style multiple-choice questions (:data:`BBQ_FIELDS`) from a table."""
    if isinstance(source, Sequence) and source and all(isinstance(p, BBQItem) for p in source):
        return list(source)
    records, name = table_records(source, BBQ_FIELDS, columns)
    items = []
    for i, r in enumerate(records):
        indices = [r["label"], r["unknown_index"], *([] if r["target_index"] is None else [r["target_index"]])]
        if any(index not in (0, 1, 2) for index in indices):
            raise InputError(f"{name} row {i}: label, unknown_index and target_index must be 0, 1 or 2.")
        if r["context_condition"] not in ("ambig", "disambig") or r["polarity"] not in ("neg", "nonneg"):
            raise InputError(f"{name} row {i}: context_condition is ambig|disambig, polarity neg|nonneg.")
        item = BBQItem(
            example_id=r["id"],
            category=r["category"],
            question_index=r["question_index"],
            polarity=r["polarity"],
            context_condition=r["context_condition"],
            context=r["context"],
            question=r["question"],
            answers=(r["ans0"], r["ans1"], r["ans2"]),
            label=r["label"],
            unknown_index=r["unknown_index"],
            target_index=r["target_index"],
            answer_tags=tuple("unknown" if k == r["unknown_index"] else "" for k in range(3)),  # type: ignore[arg-type]
            target_loc=None,
            label_type="label",
        )
        # your own questions name their target group: the authors' biased answer is the one it implies
        items.append(replace(item, target_loc=item.biased_index))
    return items
