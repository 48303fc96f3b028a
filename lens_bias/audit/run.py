"""Run audit measures on one model under several conditions, each against one shared baseline.

:func:`run_audit` scores every measure without interventions (``"baseline"``) and under each named
condition (a list of interventions: a steering vector, head scaling, a saved intervention file), through
one resumable :class:`lens_bias.cells.CellStore` (an interrupted audit recomputes only the chunks it had
not finished), then summarises each condition and the paired change from the baseline. The values it
returns are what the audit's result saves; :func:`markdown_table` renders their headline numbers and
:func:`group_tables` the same statistics per group (bias type, category, persona, demographic group).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from transformer_lens import HookedTransformer

from lens_bias.audit.base import Measure, Rows, value_of
from lens_bias.cells import CellStore, interventions_key, model_key
from lens_bias.errors import InputError
from lens_bias.executors import Executor
from lens_bias.interventions import AddVector, Intervention, check_interventions, load_intervention
from lens_bias.models import AnyModel, model_record
from lens_bias.provenance import Result, collect_provenance
from lens_bias.side_effects import check_applicable
from lens_bias.steering import refusal_vector

BASELINE = "baseline"


def run_audit(
    model: AnyModel,
    measures: Sequence[Measure],
    conditions: Mapping[str, Sequence[Intervention]] | None = None,
    *,
    cells: str | Path | None = None,
    only: Mapping[str, Sequence[str]] | None = None,
    seed: int = 0,
    batch_size: int = 16,
    progress: bool = True,
    executor: Executor | None = None,
) -> tuple[dict[str, Any], dict[str, dict[str, Rows]]]:
    """Score ``measures`` at baseline and under every condition of ``conditions`` (name -> interventions).

    ``cells``: folder of the resumable cell store (None, the default, writes nothing). ``progress``: a bar per
    measure and condition (``tqdm.auto``: a widget in a notebook; ``False`` for none). ``only``: condition name -> the
    measures it runs on (default: every measure; e.g. a refusal vector applied from the end of a chat
    instruction runs on the chat measures only). Returns ``(values, rows)``:
    ``values[measure] = {"describe", "summaries": {condition: Summary}, "changes": {condition: Summary}}``
    (changes are paired, condition - baseline) and ``rows[measure][condition]`` the row arrays.
    """
    conditions = dict(conditions or {})
    if BASELINE in conditions:
        raise InputError(f"{BASELINE!r} is the name of the unintervened run; name the condition otherwise.")
    if not measures:
        raise InputError("No measures to run.")
    only = dict(only or {})
    unknown = set(only) - set(conditions)
    if unknown:
        raise InputError(f"`only` names conditions that are not given: {sorted(unknown)}.")

    def applies(condition: str, measure: Measure) -> bool:
        return condition not in only or measure.name in only[condition]

    for condition, interventions in conditions.items():
        if not interventions:
            raise InputError("A condition needs at least one intervention (the baseline has none).")
        raw = [m.name for m in measures if m.raw_text and applies(condition, m)]
        if raw:
            check_applicable(interventions, f"the audit measures {', '.join(raw)}")
    for interventions in conditions.values():
        check_interventions(model, interventions)
    values: dict[str, Any] = {}
    rows: dict[str, dict[str, Rows]] = {}
    for measure in measures:
        rows[measure.name] = {}
        for condition, interventions in {BASELINE: (), **conditions}.items():
            if condition != BASELINE and not applies(condition, measure):
                continue
            rows[measure.name][condition] = score_rows(
                model,
                measure,
                interventions,
                cells=cells,
                seed=seed,
                batch_size=batch_size,
                progress=progress,
                executor=executor,
            )
        base = rows[measure.name][BASELINE]
        values[measure.name] = {
            "describe": measure.describe(),
            "summaries": {name: measure.summarize(r, seed=seed) for name, r in rows[measure.name].items()},
            "changes": {
                name: measure.compare(base, r, seed=seed) for name, r in rows[measure.name].items() if name != BASELINE
            },
        }
    return values, rows


def score_rows(
    model: AnyModel,
    measure: Measure,
    interventions: Sequence[Intervention] = (),
    *,
    cells: str | Path | None = None,
    seed: int = 0,
    batch_size: int = 16,
    progress: bool = True,
    executor: Executor | None = None,
) -> Rows:
    """``measure``'s rows for ``model`` under ``interventions``, through the cell store in folder ``cells``
    (None keeps nothing) keyed by the model record, the interventions (their tensors hashed) and ``seed``;
    ``executor`` computes the unfinished cells (default: this process; see :mod:`lens_bias.executors`)."""
    base = {"model": model_key(model), "interventions": interventions_key(interventions), "seed": seed}
    store = CellStore(cells, base, executor=executor)
    return measure.score(model, interventions, cells=store, batch_size=batch_size, progress=progress)


def _cell(entry: dict[str, Any] | None, signed: bool = False) -> str:
    if entry is None:
        return ""
    estimate = value_of(entry)
    if estimate is None:
        return f"undefined ({entry['undefined']})"
    sign = "+" if signed else ""
    return f"{estimate.value:{sign}.3f} [{estimate.low:{sign}.3f}, {estimate.high:{sign}.3f}]"


def _row(cells: Sequence[str]) -> str:
    """One Markdown table row; a ``|`` inside a cell is escaped."""
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _with_convention(text: str, summary: Mapping[str, Any]) -> str:
    """``text`` with the summary's scoring convention, e.g. ``statistic [convention: authors]``."""
    convention = summary.get("convention")
    return f"{text} [convention: {convention}]" if convention else text


def markdown_table(values: Mapping[str, Any]) -> str:
    """The headline numbers of every measure: baseline, each condition and its paired change, 95% intervals;
    a measure's title and first column header name its scoring convention."""
    lines = []
    for measure, entry in values.items():
        conditions = list(entry["summaries"])
        base = entry["summaries"][BASELINE]
        header = [
            _with_convention("statistic", base),
            "ideal",
            *conditions,
            *(f"change: {c}" for c in conditions if c != BASELINE),
        ]
        lines += [_with_convention(f"### {measure}", base), "", _row(header), "|" + "---|" * len(header)]
        for group, stat in base["headline"]:
            label = base["statistics"][stat]["label"]
            ideal = base["statistics"][stat]["ideal"]
            cells = [
                f"{label}" + ("" if group == "overall" else f", {group}"),
                "" if ideal is None else f"{ideal:g}",
                *(_cell(entry["summaries"][c]["groups"].get(group, {}).get("stats", {}).get(stat)) for c in conditions),
                *(
                    _cell(entry["changes"][c]["groups"].get(group, {}).get("stats", {}).get(stat), signed=True)
                    for c in conditions
                    if c != BASELINE
                ),
            ]
            lines.append(_row(cells))
        overall = base["groups"].get("overall", {})
        if overall:
            lines += ["", f"n rows {overall['n_rows']}, failed {overall['n_failed']} (baseline)."]
        lines.append("")
    return "\n".join(lines)


def group_tables(values: Mapping[str, Any]) -> str:
    """Per measure and condition, a table of every group but ``overall`` (a bias type, a BBQ category, a
    persona, a demographic group) with its rows and the measure's overall headline statistics, 95% intervals;
    a statistic a group lacks is left blank, an undefined one says why. The paired changes per group are in
    the saved values."""
    lines = []
    for measure, entry in values.items():
        base = entry["summaries"][BASELINE]
        stats = list(dict.fromkeys(stat for group, stat in base["headline"] if group == "overall"))
        labels = [base["statistics"][stat]["label"] for stat in stats]
        for condition, summary in entry["summaries"].items():
            groups = {group: value for group, value in summary["groups"].items() if group != "overall"}
            if not groups:
                continue
            header = [_with_convention("group", summary), "n rows (failed)", *labels]
            title = _with_convention(f"### {measure} per group: {condition}", summary)
            lines += [title, "", _row(header), "|" + "---|" * len(header)]
            for group, value in groups.items():
                cells = [group, f"{value['n_rows']} ({value['n_failed']})"]
                cells += [_cell(value.get("stats", {}).get(stat)) for stat in stats]
                lines.append(_row(cells))
            lines.append("")
    return "\n".join(lines)


def summary_frame(values: Mapping[str, Any]) -> Any:
    """Every statistic of every measure, group and condition (``change`` rows: the paired change from the
    baseline) as a pandas DataFrame: the scoring convention, value, 95% interval, n rows and failed, or why it is
    undefined."""
    import pandas as pd

    table = []
    for measure, entry in values.items():
        for kind in ("summaries", "changes"):
            for condition, summary in entry[kind].items():
                for group, found in summary["groups"].items():
                    for stat, value in found.get("stats", {}).items():
                        table.append(
                            {
                                "measure": measure,
                                "convention": summary.get("convention") or "",
                                "condition": condition if kind == "summaries" else f"change: {condition}",
                                "group": group,
                                "statistic": stat,
                                "value": value.get("value"),
                                "low": value.get("low"),
                                "high": value.get("high"),
                                "n_rows": found["n_rows"],
                                "n_failed": found["n_failed"],
                                "undefined": value.get("undefined", ""),
                            }
                        )
    return pd.DataFrame(table)


def rows_as_tensors(rows: Mapping[str, Mapping[str, Rows]]) -> dict[str, Any]:
    """Every numeric row array as a tensor named ``{measure}/{condition}/{array}`` (what the result saves;
    text arrays, such as generated answers, are left out: the summaries keep examples)."""
    import torch

    return {
        f"{measure}/{condition}/{name}": torch.from_numpy(np.ascontiguousarray(array))
        for measure, by_condition in rows.items()
        for condition, arrays in by_condition.items()
        for name, array in arrays.items()
        if array.dtype.kind in "biuf"
    }


def audit_items(measures: Sequence[Measure], rows: Mapping[str, Mapping[str, Rows]]) -> list[dict[str, Any]]:
    """The per-item table of an audit: one row per measure x condition x row, with the measure's ``item_id``,
    ``text`` and ``group`` (:meth:`Measure.item_info`; else the row number) and every row array of one value per
    row (a ``[n_rows, k]`` array as ``{name}_0`` .. ``{name}_{k-1}``)."""
    table: list[dict[str, Any]] = []
    for measure in measures:
        info = measure.item_info()
        for condition, arrays in rows[measure.name].items():
            n_rows = len(arrays["failed"])
            columns: dict[str, list[Any]] = {}
            for name, array in arrays.items():
                name = f"{name}_code" if name in ("item_id", "text", "group", "condition", "measure") else name
                if array.ndim == 1 and len(array) == n_rows:
                    columns[name] = array.tolist()
                elif array.ndim == 2 and len(array) == n_rows and array.dtype.kind in "biuf":
                    columns |= {f"{name}_{k}": array[:, k].tolist() for k in range(array.shape[1])}
            for i in range(n_rows):
                named = info[i] if info is not None else {"item_id": str(i), "text": "", "group": ""}
                entry = {**named, "condition": condition, "measure": measure.name}
                table.append(entry | {name: values[i] for name, values in columns.items()})
    return table


def refusal_conditions(
    model: HookedTransformer,
    measures: Sequence[Measure],
    multipliers: Sequence[float],
    layers: Sequence[int],
    *,
    batch_size: int = 16,
    seed: int = 0,
) -> tuple[dict[str, list[Intervention]], dict[str, list[str]], dict[str, Any]]:
    """The refusal steering vector as audit conditions: fitted at ``layers`` (the best held-out one is used),
    applied from the end of the chat instruction at each of ``multipliers`` on the chat measures of
    ``measures`` only. Returns ``(conditions, only, fit)`` for :func:`run_audit` (``fit``: the layer and the
    fit's summary; all empty when no multiplier is given or no measure is a chat one)."""
    chat = [m.name for m in measures if not m.raw_text]
    if not multipliers or not chat:
        return {}, {}, {}
    fitted = refusal_vector(model, layers, batch_size=batch_size, seed=seed)
    assert fitted.layer is not None, "refusal_vector fits on held-out pairs, which set the best layer"
    conditions: dict[str, list[Intervention]] = {}
    only: dict[str, list[str]] = {}
    for multiplier in multipliers:
        name = f"refusal{multiplier:+g}"
        conditions[name] = [AddVector(fitted.vector, multiplier, [fitted.layer])]
        only[name] = chat
    return conditions, only, {"layer": fitted.layer, "summary": fitted.summary()}


def load_conditions(paths: Sequence[str | Path]) -> dict[str, list[Intervention]]:
    """Saved intervention files as audit conditions, each named by its file stem."""
    conditions: dict[str, list[Intervention]] = {Path(path).stem: [load_intervention(path)] for path in paths}
    if len(conditions) != len(paths):
        raise InputError("Two --intervention files share a name; rename one (conditions are named by file stem).")
    return conditions


def audit_result(
    model: AnyModel,
    values: dict[str, Any],
    rows: dict[str, dict[str, Rows]],
    config: dict[str, Any],
    *,
    seed: int,
    measures: Sequence[Measure] = (),
) -> Result:
    """The audit's :class:`lens_bias.provenance.Result`: ``values`` of :func:`run_audit`, ``config`` (with the
    interval method added), the provenance (model, each measure's data fingerprint), the rows as tensors and,
    given the ``measures``, the per-item table (:func:`audit_items`)."""
    data = {name: entry["describe"].get("data") for name, entry in values.items()}
    return Result(
        name="audit",
        values=values,
        config={**config, "ci": "cluster bootstrap 95% percentile intervals (lens_bias.audit.base)"},
        provenance=collect_provenance(model_record=model_record(model).to_dict(), data=data, seed=seed),
        tensors=rows_as_tensors(rows),
        items=audit_items(measures, rows) if measures else [],
    )
