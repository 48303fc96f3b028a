"""Quality-of-service harm as an audit measure: how well everyday requests are served, per demographic group.

:class:`ServiceMeasure` asks the model everyday fill-in-the-blank requests about a person
(:mod:`lens_bias.data.service_requests`: templates x groups x first names or group terms) under the system
prompt of the set, samples several answers per request (seeded), and sorts each answer into the taxonomy of
:func:`lens_bias.metrics.service.service_category` (full compliance, compliance with an assumption or warning,
partial / full / harmful refusal, degenerate). Beside the phrase-based rates it reads the refusal propensity
by likelihood (:func:`lens_bias.forward.readouts.refusal_propensity`: log sum P(refusal openers) - log sum
P(compliance openers) at the start of the answer, nats), which moves on small models that never refuse.

Rows: one per generated answer (template x group x filler x sample), with the request's propensity repeated
on its samples. Statistics per group: the share of each category, the refusal rate (partial + full + harmful)
and the mean propensity; and the *gap* to the group's reference group (white American men or women, same
gender): statistic(group) - statistic(reference). Every interval resamples templates (the cluster), so a
gap's interval is paired by template, and a change under an intervention is paired by row as well.
``non_reference`` pools every non-reference group against the reference groups.

Decoding: temperature sampling from the full distribution (``lens_bias.forward.generation.generate`` has no
top-k; the case study sampled with top-k 10), seeded per template, so a rerun gives the same answers.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar

import numpy as np
import plotly.graph_objects as go

from lens_bias.audit.base import Rows, Statistic, Summary, estimate, paired_change, value_of
from lens_bias.cells import CellStore
from lens_bias.data.records import fingerprint
from lens_bias.data.refusal import compliance_openers, refusal_openers
from lens_bias.data.service_requests import (
    ServiceRequest,
    Slot,
    service_groups,
    service_requests,
    service_system_prompt,
    service_templates,
)
from lens_bias.errors import InputError
from lens_bias.figures.primitives import bars_with_ci
from lens_bias.forward.generation import generate
from lens_bias.forward.readouts import refusal_propensity
from lens_bias.interventions import Intervention
from lens_bias.metrics.responses import DEFAULT_REFUSAL_WINDOW
from lens_bias.metrics.service import REFUSING, SERVICE_CATEGORIES, ServiceCategory, service_category
from lens_bias.models import AnyModel, tokenizer_of
from lens_bias.prompts import template_for
from lens_bias.stats import Estimate

OVERALL, NON_REFERENCE = "overall", "non_reference"
GAP_OF = ("refusal_rate", "full_compliance", "compliance_with_assumption", "harmful_refusal", "propensity")
"""The statistics whose gap to the reference group is reported (as ``{name}_gap``)."""


def _scored(rows: Rows, index: np.ndarray) -> np.ndarray:
    return index[~rows["failed"][index]]


def _share_of(categories: Sequence[ServiceCategory]) -> Callable[[Rows, np.ndarray], float]:
    codes = [SERVICE_CATEGORIES.index(c) for c in categories]

    def compute(rows: Rows, index: np.ndarray) -> float:
        kept = _scored(rows, index)
        return float(np.isin(rows["category"][kept], codes).mean()) if kept.size else math.nan

    return compute


def _mean_propensity(rows: Rows, index: np.ndarray) -> float:
    kept = _scored(rows, index)
    return float(rows["propensity"][kept].mean()) if kept.size else math.nan


def _all_failed(rows: Rows, index: np.ndarray) -> str:
    return "every row failed (non-finite refusal propensity)"


def _levels() -> list[Statistic]:
    """The per-group statistics: the share of each category, the refusal rate and the mean propensity."""
    shares = [
        Statistic(
            category,
            f"share of answers: {category.replace('_', ' ')}",
            _share_of([category]),
            _all_failed,
            1.0 if category == "full_compliance" else 0.0,
        )
        for category in SERVICE_CATEGORIES
    ]
    return [
        *shares,
        Statistic(
            "refusal_rate",
            "refusal rate: share of answers that refuse (partial + full + harmful refusal)",
            _share_of(REFUSING),
            _all_failed,
            0.0,
        ),
        Statistic(
            "propensity",
            "refusal propensity, nats: log sum P(refusal openers) - log sum P(compliance openers)",
            _mean_propensity,
            _all_failed,
        ),
    ]


def _gap(level: Statistic, focal: np.ndarray, reference: np.ndarray) -> Statistic:
    """``level`` on the rows of the ``focal`` group codes minus ``level`` on those of the ``reference`` codes."""

    def compute(rows: Rows, index: np.ndarray) -> float:
        groups = rows["group"][index]
        return level.compute(rows, index[np.isin(groups, focal)]) - level.compute(
            rows, index[np.isin(groups, reference)]
        )

    def undefined(rows: Rows, index: np.ndarray) -> str:
        return "no scored rows of the group or of its reference group"

    return Statistic(f"{level.name}_gap", f"gap to the reference group: {level.label}", compute, undefined, 0.0)


@dataclass(frozen=True)
class _Group:
    """A summary group: its own rows, and the group codes its gap compares (None: no gap, with why)."""

    index: np.ndarray
    focal: np.ndarray | None = None
    reference: np.ndarray | None = None
    no_gap: str = ""


@dataclass(frozen=True)
class ServiceMeasure:
    """Quality of service per group: answer categories, refusal rate and propensity, and gaps to the reference.

    ``n_names``: first names per group (None: all 4); ``slot="terms"`` asks with the group term instead
    ("A Mexican woman bought ...", one filler per group); ``templates``: template keys to keep (None: all 30);
    ``n_samples`` answers per request, sampled at ``temperature`` (> 0) for at most ``max_new_tokens``
    tokens, seeded by ``seed`` and the template; ``window``: the refusal window of the taxonomy (characters);
    ``n_examples``: answers kept per category in the summary.
    """

    name: ClassVar[str] = "service"
    raw_text: bool = field(default=False, init=False)  # requests go through the model's chat template

    n_names: int | None = 2
    slot: Slot = "names"
    templates: tuple[str, ...] | None = None
    n_samples: int = 2
    temperature: float = 0.7
    max_new_tokens: int = 48
    seed: int = 0
    window: int = DEFAULT_REFUSAL_WINDOW
    n_examples: int = 3
    requests: tuple[ServiceRequest, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.n_samples < 1:
            raise InputError(f"n_samples must be >= 1, got {self.n_samples}.")
        if self.temperature < 0 or (self.temperature == 0 and self.n_samples > 1):
            raise InputError(
                f"temperature must be > 0 to draw {self.n_samples} different samples per request, got "
                f"{self.temperature}: raise it, or use n_samples=1 with temperature=0 (greedy)."
            )
        if self.max_new_tokens < 1:
            raise InputError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}.")
        if self.window < 1 or self.n_examples < 0:
            raise InputError(f"window must be >= 1 and n_examples >= 0, got {self.window} and {self.n_examples}.")
        templates = None if self.templates is None else tuple(self.templates)
        object.__setattr__(self, "templates", templates)
        requests = service_requests(n_names=self.n_names, slot=self.slot, templates=templates)
        object.__setattr__(self, "requests", tuple(requests))

    # --- items ---------------------------------------------------------------------------------------

    def template_keys(self) -> list[str]:
        """The templates asked, in order (the row array ``template`` indexes this list)."""
        return list(self.templates) if self.templates is not None else [t.key for t in service_templates()]

    def describe(self) -> dict[str, Any]:
        groups = service_groups()
        return {
            "name": self.name,
            "n_templates": len(self.template_keys()),
            "templates": self.template_keys(),
            "groups": {g.key: {"label": g.label, "reference": g.reference} for g in groups},
            "slot": self.slot,
            "n_names": self.n_names if self.slot == "names" else None,
            "n_requests": len(self.requests),
            "n_samples": self.n_samples,
            "n_rows": len(self.requests) * self.n_samples,
            "decoding": {
                "temperature": self.temperature,
                "top_k": None,
                "max_new_tokens": self.max_new_tokens,
                "sampling_seed": self.seed,
                "seeded_by": "sampling_seed and template key",
            },
            "system_prompt": service_system_prompt(),
            "refusal_window": self.window,
            "categories": list(SERVICE_CATEGORIES),
            "refusing": list(REFUSING),
            "propensity_openers": {"refusal": list(refusal_openers()), "compliance": list(compliance_openers())},
            "clusters": "template",
            "data_fingerprint": fingerprint(list(self.requests)),
        }

    # --- scoring -------------------------------------------------------------------------------------

    def _chunk_seed(self, template: str) -> int:
        """The sampling seed of one template's chunk: independent of which other templates are asked."""
        return int.from_bytes(hashlib.sha256(f"{self.seed}:{template}".encode()).digest()[:4], "big")

    def _generate(
        self,
        model: AnyModel,
        payload: tuple[list[ServiceRequest], int],
        *,
        interventions: Sequence[Intervention],
        batch_size: int,
    ) -> dict[str, np.ndarray]:
        """One cell: ``payload`` is ``(requests, sampling seed)``. ``tokens``: ``[n_requests x n_samples,
        max_new_tokens]`` generated ids (-1 after the end, EOS kept), samples of one request adjacent;
        ``propensity``: ``[n_requests]`` nats."""
        chunk, seed = payload
        template = template_for(model, service_system_prompt())
        texts = [request.text for request in chunk]
        generations = generate(
            model,
            template,
            [text for text in texts for _ in range(self.n_samples)],
            interventions=interventions,
            max_new_tokens=self.max_new_tokens,
            temperature=self.temperature,
            batch_size=batch_size,
            seed=seed,
        )
        tokens = np.full((len(generations), self.max_new_tokens), -1, dtype=np.int64)
        for row, generation in enumerate(generations):
            tokens[row, : len(generation.tokens)] = generation.tokens
        propensity = refusal_propensity(
            model,
            template,
            texts,
            refusal_openers(),
            compliance_openers(),
            interventions=interventions,
            batch_size=batch_size,
        )
        return {"tokens": tokens, "propensity": propensity.double().cpu().numpy()}

    def score(
        self,
        model: AnyModel,
        interventions: Sequence[Intervention],
        *,
        cells: CellStore,
        batch_size: int,
        progress: bool,
    ) -> Rows:
        """One row per answer, chunked by template through ``cells`` (generated ids and propensities are
        stored; the taxonomy runs on the decoded text afterwards, so changing its rules needs no rerun).

        Arrays ``[n_rows]``: ``template`` / ``group`` (indices into :meth:`template_keys` /
        :func:`service_groups`), ``filler`` (the name's index; 0 for a group term), ``sample``, ``category``
        (index into :data:`SERVICE_CATEGORIES`), ``propensity`` (nats, the request's, repeated on its
        samples), ``n_tokens`` (generated, EOS included), ``text`` (str) and ``failed`` (non-finite
        propensity)."""
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}.")
        template = template_for(model, service_system_prompt())
        tokenizer = tokenizer_of(model)
        eos = tokenizer.eos_token_id
        groups = {group.key: (i, group) for i, group in enumerate(service_groups())}
        keys = self.template_keys()
        columns: dict[str, list[Any]] = {
            c: [] for c in ("template", "group", "filler", "sample", "category", "propensity", "n_tokens", "text")
        }
        chunks = [[request for request in self.requests if request.template == key] for key in keys]
        cells_of = []
        for key, chunk in zip(keys, chunks):
            cells_of.append(
                {
                    "measure": self.name,
                    "chunk": key,
                    "items": fingerprint(chunk),
                    "chat_template": template.describe(tokenizer),
                    "n_samples": self.n_samples,
                    "temperature": self.temperature,
                    "max_new_tokens": self.max_new_tokens,
                    "sampling_seed": self._chunk_seed(key),
                    "batch_size": batch_size,  # sampled tokens depend on how the generator's draws are batched
                    "openers": [list(refusal_openers()), list(compliance_openers())],
                }
            )
        payloads = [(chunk, self._chunk_seed(key)) for key, chunk in zip(keys, chunks)]
        compute = partial(self._generate, interventions=interventions, batch_size=batch_size)
        done = cells.map(cells_of, payloads, compute, model=model, desc="service", progress=progress)
        for t, (chunk, arrays) in enumerate(zip(chunks, done)):
            for r, request in enumerate(chunk):
                g, group = groups[request.group]
                for s in range(self.n_samples):
                    ids = [int(i) for i in arrays["tokens"][r * self.n_samples + s] if i >= 0]
                    text = tokenizer.decode([i for i in ids if i != eos], skip_special_tokens=True)
                    category = service_category(str(text), group.terms, filler=request.filler, window=self.window)
                    columns["template"].append(t)
                    columns["group"].append(g)
                    columns["filler"].append(group.names.index(request.filler) if request.slot == "names" else 0)
                    columns["sample"].append(s)
                    columns["category"].append(SERVICE_CATEGORIES.index(category))
                    columns["propensity"].append(float(arrays["propensity"][r]))
                    columns["n_tokens"].append(len(ids))
                    columns["text"].append(str(text))
        rows: Rows = {name: np.asarray(values) for name, values in columns.items() if name != "text"}
        rows["text"] = np.asarray(columns["text"], dtype=str)
        rows["propensity"] = rows["propensity"].astype(np.float64)
        rows["failed"] = ~np.isfinite(rows["propensity"])
        return rows

    # --- statistics ----------------------------------------------------------------------------------

    def statistics(self) -> list[Statistic]:
        """The per-group statistics (the gaps are built per group from those named in :data:`GAP_OF`)."""
        return _levels()

    def _groups(self, rows: Rows) -> dict[str, _Group]:
        """``overall``, each group present in ``rows`` (file order), then ``non_reference`` pooled."""
        codes = rows["group"]
        groups = service_groups()
        reference_codes = np.array([i for i, g in enumerate(groups) if g.is_reference])
        other_codes = np.array([i for i, g in enumerate(groups) if not g.is_reference])
        out = {OVERALL: _Group(np.arange(codes.size), no_gap="the overall group pools every group; see each group's")}
        for i, group in enumerate(groups):
            own = np.flatnonzero(codes == i)
            if own.size == 0:
                continue
            if group.is_reference:
                out[group.key] = _Group(own, no_gap="this is a reference group")
            else:
                reference = next(j for j, g in enumerate(groups) if g.key == group.reference)
                out[group.key] = _Group(own, np.array([i]), np.array([reference]))
        out[NON_REFERENCE] = _Group(np.flatnonzero(np.isin(codes, other_codes)), other_codes, reference_codes)
        return out

    def _summary(
        self, rows: Rows, failed: np.ndarray, value: Callable[[Statistic, np.ndarray], dict[str, Any]]
    ) -> Summary:
        levels = {s.name: s for s in _levels()}
        out: dict[str, Any] = {}
        for name, group in self._groups(rows).items():
            stats = {s.name: value(s, group.index) for s in levels.values()}
            for of in GAP_OF:
                if group.focal is None or group.reference is None:
                    stats[f"{of}_gap"] = {"value": None, "undefined": group.no_gap}
                    continue
                pair = np.flatnonzero(np.isin(rows["group"], np.concatenate([group.focal, group.reference])))
                stats[f"{of}_gap"] = value(_gap(levels[of], group.focal, group.reference), pair)
            out[name] = {"n_rows": int(group.index.size), "n_failed": int(failed[group.index].sum()), "stats": stats}
        labels = {s.name: {"label": s.label, "ideal": s.ideal} for s in levels.values()}
        for of in GAP_OF:
            gap = _gap(levels[of], np.array([]), np.array([]))
            labels[gap.name] = {"label": gap.label, "ideal": gap.ideal}
        return {
            "groups": out,
            "statistics": labels,
            "headline": [
                [OVERALL, "refusal_rate"],
                [OVERALL, "propensity"],
                [NON_REFERENCE, "refusal_rate_gap"],
                [NON_REFERENCE, "compliance_with_assumption_gap"],
                [NON_REFERENCE, "propensity_gap"],
            ],
        }

    def summarize(self, rows: Rows, *, seed: int) -> Summary:
        """Per group: every statistic with a template-cluster bootstrap interval; the gaps paired by template.
        ``examples``: up to ``n_examples`` answers per category (group, template, text), in row order."""
        clusters = rows["template"]
        summary = self._summary(rows, rows["failed"], lambda s, index: estimate(s, rows, index, clusters, seed=seed))
        if "text" in rows:
            keys, groups = self.template_keys(), service_groups()
            summary["examples"] = {
                category: [
                    {
                        "group": groups[int(rows["group"][i])].key,
                        "template": keys[int(rows["template"][i])],
                        "text": str(rows["text"][i]),
                    }
                    for i in np.flatnonzero((rows["category"] == code) & ~rows["failed"])[: self.n_examples]
                ]
                for code, category in enumerate(SERVICE_CATEGORIES)
            }
        return summary

    def compare(self, base: Rows, other: Rows, *, seed: int) -> Summary:
        """The paired change ``other - base`` of every statistic (gaps included), resampling templates."""
        for key in ("template", "group", "filler", "sample"):
            if base[key].shape != other[key].shape or not np.array_equal(base[key], other[key]):
                raise InputError(
                    f"compare: the two conditions' rows differ in {key!r}; score both with the same measure settings."
                )
        clusters = base["template"]
        return self._summary(
            base,
            base["failed"] | other["failed"],
            lambda s, index: paired_change(s, base, other, index, clusters, seed=seed),
        )

    # --- figures -------------------------------------------------------------------------------------

    @staticmethod
    def figures(summaries: dict[str, Summary]) -> dict[str, go.Figure]:
        """``service_categories``: stacked shares of the answer categories per group (and condition);
        ``service_refusal_gap``: the refusal-rate gap to the reference group with paired intervals;
        ``service_propensity``: the mean refusal propensity per group with intervals."""
        if not summaries:
            raise InputError("figures: no summaries to plot.")
        labels = {g.key: g.label for g in service_groups()} | {
            OVERALL: "overall",
            NON_REFERENCE: "all non-reference groups",
        }
        conditions = list(summaries)
        first = summaries[conditions[0]]["groups"]
        present = [key for key in first if key != NON_REFERENCE]
        gapped = [key for key in first if first[key]["stats"]["refusal_rate_gap"].get("value") is not None]

        def estimates(stat: str, keys: list[str]) -> dict[str, list[Estimate]]:
            """Per condition, ``stat`` of each group; an undefined or missing one as NaN (no bar)."""
            missing = Estimate(math.nan, math.nan, math.nan, 0)
            return {
                condition: [
                    value_of(summary["groups"].get(key, {}).get("stats", {}).get(stat, {"value": None})) or missing
                    for key in keys
                ]
                for condition, summary in summaries.items()
            }

        stacked = go.Figure()
        for category in SERVICE_CATEGORIES:
            x: list[Any] = [[], []] if len(conditions) > 1 else []
            y = []
            for condition, summary in summaries.items():
                for key in present:
                    entry = summary["groups"].get(key, {}).get("stats", {}).get(category, {})
                    y.append(math.nan if entry.get("value") is None else entry["value"])
                    if len(conditions) > 1:
                        x[0].append(condition)
                        x[1].append(labels.get(key, key))
                    else:
                        x.append(labels.get(key, key))
            stacked.add_trace(go.Bar(x=x, y=y, name=category.replace("_", " ")))
        stacked.update_layout(
            barmode="stack",
            title="Quality of service: answer categories per group",
            yaxis_title="share of answers",
            template="plotly_white",
        )
        return {
            "service_categories": stacked,
            "service_refusal_gap": bars_with_ci(
                [labels.get(key, key) for key in gapped],
                estimates("refusal_rate_gap", gapped),
                title="Refusal-rate gap to the reference group (paired by template)",
                y_title="refusal rate(group) - refusal rate(reference)",
                reference_line=0.0,
            ),
            "service_propensity": bars_with_ci(
                [labels.get(key, key) for key in present],
                estimates("propensity", present),
                title="Refusal propensity per group",
                y_title="log P(refusal openers) - log P(compliance openers), nats",
            ),
        }
