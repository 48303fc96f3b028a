"""The (biased text -> debiased rewrite) pairs of debiasing by instruction fine-tuning: SR_LLM's CSV format, the
project's own set, the train/held-out split, and the word-level scores of a rewrite.

Data format (SR_LLM's): a UTF-8 CSV with a header row.

=================  ========  ===================================================================================
column             required  meaning
=================  ========  ===================================================================================
``biased_text``    yes       the biased sentence (the fine-tuned model's input)
``debiased_text``  yes       its rewrite, the content kept and the bias dropped (the training target)
``dimension``      no        the kind of bias: gender, race, religion, profession, age, disability, nationality
``aspect``         no        what the sentence is about (leadership, driving, money, ...)
``label``          no        SR_LLM's ``slightly biased`` / ``highly biased``
``biased_words``   no        the stereotype words or phrases, ``;``-separated (``,``-separated or a Python list
                             literal ``['a', 'b']`` are read too)
``target``         no        the split key: pairs with the same target (rewrites of one claim over different
                             groups) stay on one side of the split; default: each pair is its own target
``id``             no        a name for the pair; default ``row-{n}`` (n: the data row, from 1)
=================  ========  ===================================================================================

Other columns are ignored. A missing file, a file that is not UTF-8, a header without the required columns, a header
that names a column twice, a data row that repeats the header (two CSVs pasted together), a row with an empty
``biased_text`` or ``debiased_text``, a field over :mod:`csv`'s limit (128 KiB) or another malformed line, and a file
with no rows are each one :class:`InputError`.

The project's set (``lens_bias/data/resources/debias_pairs.csv``, :func:`load_rewrite_pairs` with no path): 347
pairs over 7 dimensions (gender 42, race 55, religion 60, profession 68, age 44, disability 30, nationality 48),
expanded from the 79 hand-written claims of ``debias_templates.yaml`` (:func:`template_pairs`; its header says
how they were written). Each claim is a generalising stereotype with a ``{group}`` slot and one hand-written
rewrite; it is expanded over every group of its dimension (2 to 10 groups), so the set ties no stereotype to a
particular group. The CSV is the expansion, rows in the YAML's order; regenerate it with
``python -m lens_bias.debias.rewrites`` (a test checks that the file and the templates agree).

Split (:func:`split_rewrites`): by ``target``, i.e. by claim for the project's set, so the held-out pairs are
rewrites of claims the model never saw in training (the expansions of one claim differ only in the group word
and would otherwise leak across the split).

Scores of a rewrite (pure text, no model; :func:`content_words`, :func:`content_retention`,
:func:`keeps_stereotype`):

* content words of a sentence: its lowercase alphabetic tokens of two or more letters, minus the small stop-word
  list :data:`STOP_WORDS` (articles, pronouns, auxiliaries, prepositions, conjunctions, negation and a few
  quantifiers) and minus every word of the pair's ``biased_words`` (the stereotype is not content to keep). The
  group words ("women", "Muslims") stay content words: a rewrite that drops the group loses them, and the
  reference rewrites show how much such a rewrite loses (their own retention is the ceiling to compare with);
* content retention: the share of the original's content words found in the rewrite, a word counting as found
  when a rewrite token has the same first :data:`STEM_LETTERS` letters (a crude stem: "leaders" ~ "leadership",
  "drivers" ~ "driving"; words shorter than that must match exactly);
* a rewrite keeps the stereotype when it contains one of the pair's ``biased_words`` as a whole word or phrase
  (case-insensitive); pairs without ``biased_words`` are not scored for it.
"""

from __future__ import annotations

import ast
import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from lens_bias.data.records import split_by_target
from lens_bias.data.resources import load_resource
from lens_bias.errors import InputError
from lens_bias.files import write_text_atomic

REQUIRED_COLUMNS = ("biased_text", "debiased_text")
OPTIONAL_COLUMNS = ("dimension", "aspect", "label", "biased_words", "target", "id")
#: The columns :func:`write_rewrite_pairs` writes: SR_LLM's order, then the split key and the id.
CSV_COLUMNS = ("biased_text", "dimension", "biased_words", "aspect", "label", "debiased_text", "target", "id")
PROJECT_FILE = "debias_pairs.csv"

_STOP_WORDS = """a an the and or but nor so yet if then than as of in on at to for from by with about into over
    under after
    before between through during without within against among is are was were be been being am do does did done
    have has had having can could will would shall should may might must it its this that these those there here
    they them their theirs he him his she her hers we us our you your i me my who whom whose which what when where
    why how all any some most many much more every each no not never only just very too also always other another
    such own same both either neither"""
#: Function words that carry no content of their own (see the module docstring).
STOP_WORDS = frozenset(_STOP_WORDS.split())
#: Letters a content word and a rewrite token must share to count as the same word (crude stemming).
STEM_LETTERS = 4


@dataclass(frozen=True)
class RewritePair:
    """A biased sentence and its debiased rewrite, with SR_LLM's optional annotations.

    ``target`` is the split key (the claim the pair expands, for the project's set); ``biased_words`` are the
    stereotype words or phrases a rewrite should not repeat (empty: not annotated).
    """

    id: str
    biased_text: str
    debiased_text: str
    dimension: str = ""
    aspect: str = ""
    label: str = ""
    biased_words: tuple[str, ...] = ()
    target: str = ""

    def __post_init__(self) -> None:
        for name in ("id", "biased_text", "debiased_text"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise InputError(f"RewritePair.{name} must be a non-empty string, got {value!r}.")
        if not self.target:
            object.__setattr__(self, "target", self.id)


def parse_biased_words(cell: str) -> tuple[str, ...]:
    """The words of a ``biased_words`` cell: ``;``-separated (else ``,``-separated), or a Python list literal."""
    cell = cell.strip()
    if not cell:
        return ()
    if cell.startswith("["):
        try:
            parsed = ast.literal_eval(cell)
        except (SyntaxError, ValueError):
            parsed = None
        if isinstance(parsed, list) and all(isinstance(word, str) for word in parsed):
            return tuple(word.strip() for word in parsed if word.strip())
    separator = ";" if ";" in cell else ","
    return tuple(word.strip(" '\"[]") for word in cell.split(separator) if word.strip(" '\"[]"))


def load_rewrite_pairs(path: str | Path | None = None) -> list[RewritePair]:
    """The pairs of a rewrite CSV (format in the module docstring); ``None``: the project's own set.

    Raises:
        InputError: the file does not exist or is not UTF-8, the header lacks a required column (the message lists
            the columns the file has) or names one twice, a row repeats the header or has an empty ``biased_text`` /
            ``debiased_text``, a line is not CSV (e.g. a field over 128 KiB), or there is no row.
    """
    if path is None:
        name, raw = (
            f"the project's {PROJECT_FILE}",
            files("lens_bias.data.resources").joinpath(PROJECT_FILE).read_bytes(),
        )
    else:
        file = Path(path).expanduser()
        name = str(file)
        if not file.is_file():
            raise InputError(
                f"data: {file} does not exist (or is not a file). Pass a CSV with the columns "
                f"{', '.join(REQUIRED_COLUMNS)} (optional: {', '.join(OPTIONAL_COLUMNS)}), or no path for the "
                "project's set."
            )
        raw = file.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(
            f"data: {name} is not UTF-8 text ({error.reason} at byte {error.start}); save the CSV as UTF-8."
        ) from error
    reader = csv.DictReader(io.StringIO(text))
    try:
        return _read_pairs(reader, name)
    except csv.Error as error:
        raise InputError(f"data: {name}, line {reader.line_num + 1}: not a readable CSV line ({error}).") from None


def _read_pairs(reader: csv.DictReader, name: str) -> list[RewritePair]:
    """The pairs of a rewrite CSV's ``reader`` (``name``: the file, for errors)."""
    columns = [column.strip() for column in reader.fieldnames or []]
    twice = sorted({column for column in columns if column and columns.count(column) > 1})
    if twice:
        raise InputError(f"data: {name} has the column {', '.join(twice)} twice; keep one column of each name.")
    missing = [column for column in REQUIRED_COLUMNS if column not in columns]
    if missing:
        raise InputError(
            f"data: {name} lacks the required column(s) {', '.join(missing)}; it has "
            f"{', '.join(columns) if columns else 'no header'}. A rewrite CSV needs {', '.join(REQUIRED_COLUMNS)} "
            f"(optional: {', '.join(OPTIONAL_COLUMNS)})."
        )
    reader.fieldnames = columns
    pairs = []
    for number, row in enumerate(reader, start=1):
        cells = {key: (value or "").strip() for key, value in row.items() if isinstance(key, str)}
        if all(cells[column] == column for column in REQUIRED_COLUMNS):
            raise InputError(
                f"data: {name}, data row {number} (line {reader.line_num}) repeats the header (two CSVs pasted "
                "together?); delete the row."
            )
        for column in REQUIRED_COLUMNS:
            if not cells[column]:
                raise InputError(
                    f"data: {name}, data row {number} (line {reader.line_num}) has an empty {column}; "
                    "fill it in or delete the row."
                )
        pairs.append(
            RewritePair(
                id=cells.get("id") or f"row-{number}",
                biased_text=cells["biased_text"],
                debiased_text=cells["debiased_text"],
                dimension=cells.get("dimension", ""),
                aspect=cells.get("aspect", ""),
                label=cells.get("label", ""),
                biased_words=parse_biased_words(cells.get("biased_words", "")),
                target=cells.get("target", ""),
            )
        )
    if not pairs:
        raise InputError(f"data: {name} has a header but no pairs; a training set needs at least one row.")
    return pairs


def split_rewrites(
    pairs: Sequence[RewritePair], held_out: float = 0.3, seed: int = 0
) -> tuple[list[RewritePair], list[RewritePair]]:
    """``(train, held_out)`` by ``target`` (:func:`lens_bias.data.records.split_by_target`): pairs that share a
    target (the expansions of one claim) stay together; a target is held out iff a seeded hash of it falls below
    ``held_out``, so ``held_out`` is the expected share of *targets* (SR_LLM holds out 30%) and the split of a
    target does not depend on the other pairs. The order of the pairs is kept on each side."""
    if not pairs:
        raise InputError("split_rewrites: no pairs to split (load them with load_rewrite_pairs).")
    if len({pair.target for pair in pairs}) < 2:
        raise InputError(
            f"split_rewrites: all {len(pairs)} pairs share the target {pairs[0].target!r}; a split needs pairs of at "
            "least two targets (give the CSV's target column more than one value, or leave it empty)."
        )
    if not 0.0 < held_out < 1.0:
        raise InputError(f"held_out must be a share in (0, 1), got {held_out}.")
    return split_by_target(pairs, held_out, seed)


def _fill(template: str, group: str) -> str:
    return template.replace("{Group}", group[:1].upper() + group[1:]).replace("{group}", group)


def template_pairs() -> list[RewritePair]:
    """The project's set expanded from ``debias_templates.yaml`` (what ``debias_pairs.csv`` holds): every claim
    over every group of its dimension (one pair for a claim without a slot). Id ``{dimension}-{key}[-{group}]``,
    target ``{dimension}-{key}``."""
    pairs = []
    for dimension, spec in load_resource("debias_templates")["dimensions"].items():
        for claim in spec["claims"]:
            target = f"{dimension}-{claim['key']}"
            slotted = "{group}" in claim["biased"].lower()
            for group in spec["groups"] if slotted else [""]:
                pairs.append(
                    RewritePair(
                        id=f"{target}-{group.lower().replace(' ', '_')}" if slotted else target,
                        biased_text=_fill(claim["biased"], group),
                        debiased_text=_fill(claim["debiased"], group),
                        dimension=dimension,
                        aspect=claim["aspect"],
                        label=claim["label"],
                        biased_words=tuple(claim["biased_words"]),
                        target=target,
                    )
                )
    return pairs


def write_rewrite_pairs(pairs: Sequence[RewritePair], path: str | Path) -> Path:
    """Write ``pairs`` as a rewrite CSV (:data:`CSV_COLUMNS`, ``biased_words`` ``;``-separated), atomically."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for pair in pairs:
        writer.writerow(
            [
                pair.biased_text,
                pair.dimension,
                "; ".join(pair.biased_words),
                pair.aspect,
                pair.label,
                pair.debiased_text,
                pair.target,
                pair.id,
            ]
        )
    return write_text_atomic(path, out.getvalue())


def _tokens(text: str) -> list[str]:
    return [token for token in re.findall(r"[a-z]+", text.lower()) if len(token) >= 2]


def _stem(word: str) -> str:
    return word[:STEM_LETTERS]


def content_words(text: str, biased_words: Sequence[str] = ()) -> list[str]:
    """The content words of ``text`` in order of first appearance (see the module docstring)."""
    excluded = STOP_WORDS | {word for phrase in biased_words for word in _tokens(phrase)}
    return list(dict.fromkeys(token for token in _tokens(text) if token not in excluded))


def content_retention(original: str, rewrite: str, biased_words: Sequence[str] = ()) -> float | None:
    """Share of ``original``'s content words found in ``rewrite`` (same first :data:`STEM_LETTERS` letters); None
    when the original has no content word."""
    words = content_words(original, biased_words)
    if not words:
        return None
    found = {_stem(token) for token in _tokens(rewrite)}
    return sum(_stem(word) in found for word in words) / len(words)


def keeps_stereotype(rewrite: str, biased_words: Sequence[str]) -> bool:
    """Whether ``rewrite`` contains one of ``biased_words`` as a whole word or phrase (case-insensitive)."""
    return any(
        re.search(rf"(?<![a-z]){re.escape(phrase.lower())}(?![a-z])", rewrite.lower()) for phrase in biased_words
    )


if __name__ == "__main__":
    target = Path(__file__).resolve().parents[1] / "data" / "resources" / PROJECT_FILE
    print("wrote", write_rewrite_pairs(template_pairs(), target))
