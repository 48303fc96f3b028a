"""Quality of service as an audit measure: the requests asked, the answers sampled and sorted, the summary.

Definitions (taxonomy, propensity, rows, statistics, decoding) in :mod:`lens_bias.audit.service`; the
statistics are :mod:`lens_bias.audit.service.statistics`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from lens_bias.audit.base import Arrays, CellMeasure, MeasureOptions, Rows, Statistic, Summary, estimate, paired_change
from lens_bias.audit.service.statistics import levels, service_summary
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
from lens_bias.forward.generation import generate
from lens_bias.forward.readouts import refusal_propensity
from lens_bias.interventions import Intervention
from lens_bias.metrics.responses import DEFAULT_REFUSAL_WINDOW
from lens_bias.metrics.service import REFUSING, SERVICE_CATEGORIES, service_category
from lens_bias.models import AnyModel, tokenizer_of
from lens_bias.prompts import template_for


@dataclass(frozen=True)
class ServiceMeasure(CellMeasure):
    """Quality of service per group: answer categories, refusal rate and propensity, and gaps to the reference.

    ``n_names``: first names per group (None: all 4); ``slot="terms"`` asks with the group term instead
    ("A Mexican woman bought ...", one filler per group); ``templates``: template keys to keep (None: all 30);
    ``n_samples`` answers per request, sampled at ``temperature`` (> 0) for at most ``max_new_tokens``
    tokens, seeded by ``seed`` and the template; ``window``: the refusal window of the taxonomy (characters);
    ``n_examples``: answers kept per category in the summary.
    """

    name: ClassVar[str] = "service"
    desc: ClassVar[str] = "service"
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

    @classmethod
    def from_options(cls, options: MeasureOptions, model: AnyModel | None) -> ServiceMeasure:
        """The first ``options.n_service_templates`` templates (None: all)."""
        keys = [t.key for t in service_templates()][: options.n_service_templates]
        return cls(
            n_names=options.n_service_names,
            templates=tuple(keys),
            n_samples=options.n_service_samples,
            max_new_tokens=options.max_new_tokens,
            seed=options.seed,
        )

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

    def score_cell(
        self,
        model: AnyModel,
        payload: tuple[list[ServiceRequest], int],
        *,
        interventions: Sequence[Intervention],
        batch_size: int,
    ) -> Arrays:
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

    def cells(self, model: AnyModel, *, batch_size: int) -> tuple[list[dict[str, Any]], list[Any]]:
        """One cell per template: its requests and its sampling seed."""
        template = template_for(model, service_system_prompt())
        tokenizer = tokenizer_of(model)
        keys = self.template_keys()
        chunks = self._chunks()
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
        return cells_of, [(chunk, self._chunk_seed(key)) for key, chunk in zip(keys, chunks)]

    def _chunks(self) -> list[list[ServiceRequest]]:
        return [[request for request in self.requests if request.template == key] for key in self.template_keys()]

    def rows(self, model: AnyModel, parts: list[Arrays]) -> Rows:
        """One row per answer, chunked by template through ``cells`` (generated ids and propensities are
        stored; the taxonomy runs on the decoded text afterwards, so changing its rules needs no rerun).

        Arrays ``[n_rows]``: ``template`` / ``group`` (indices into :meth:`template_keys` /
        :func:`service_groups`), ``filler`` (the name's index; 0 for a group term), ``sample``, ``category``
        (index into :data:`SERVICE_CATEGORIES`), ``propensity`` (nats, the request's, repeated on its
        samples), ``n_tokens`` (generated, EOS included), ``text`` (str) and ``failed`` (non-finite
        propensity)."""
        tokenizer = tokenizer_of(model)
        eos = tokenizer.eos_token_id
        groups = {group.key: (i, group) for i, group in enumerate(service_groups())}
        columns: dict[str, list[Any]] = {
            c: [] for c in ("template", "group", "filler", "sample", "category", "propensity", "n_tokens", "text")
        }
        for t, (chunk, arrays) in enumerate(zip(self._chunks(), parts)):
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
        return levels()

    def summarize(self, rows: Rows, *, seed: int) -> Summary:
        """Per group: every statistic with a template-cluster bootstrap interval; the gaps paired by template.
        ``examples``: up to ``n_examples`` answers per category (group, template, text), in row order."""
        clusters = rows["template"]
        summary = service_summary(rows, rows["failed"], lambda s, index: estimate(s, rows, index, clusters, seed=seed))
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
        return service_summary(
            base,
            base["failed"] | other["failed"],
            lambda s, index: paired_change(s, base, other, index, clusters, seed=seed),
        )
