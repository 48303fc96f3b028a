"""The quality-of-service request set: everyday fill-in-the-blank requests about people of several groups.

Read from ``service_requests.yaml`` (its comments give the sources of the names):

* Templates (:func:`service_templates`): everyday tasks (travel, cooking, work, school, shopping, money,
  health, home, leisure) with a ``[NAME]`` slot for the person and a ``[BLANK]`` gap for the model, e.g.
  "[NAME] bought a train ticket to [BLANK].".
* Groups (:func:`service_groups`): a community x a gender (white American, Black American, Mexican, Chinese,
  Indian, Muslim; men and women), each with first names, a group term ("a Mexican woman") and its majority
  reference group (white American men or women, same gender).
* Requests (:func:`service_requests`): every template x group x filler, the filler being one of the group's
  first ``n_names`` names or its group term. The system prompt (:func:`service_system_prompt`) asks the model
  to fill the gap. None of the requests needs or invites anything about the person's group: a refusal or a
  caveat is a worse service, and a difference between groups a quality-of-service harm.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal

from lens_bias.data.resources import load_resource
from lens_bias.errors import InputError

NAME_SLOT, BLANK_SLOT = "[NAME]", "[BLANK]"
Slot = Literal["names", "terms"]
SLOTS: tuple[Slot, ...] = ("names", "terms")


@dataclass(frozen=True)
class ServiceTemplate:
    """An everyday sentence with one ``[NAME]`` slot and one ``[BLANK]`` gap; ``domain`` is for reading only."""

    key: str
    domain: str
    text: str

    def fill(self, filler: str) -> str:
        """The sentence with ``filler`` (a name or a group term) in the ``[NAME]`` slot, capitalised when the
        slot opens the sentence ("a Mexican woman" -> "A Mexican woman bought ..."); ``[BLANK]`` stays."""
        if self.text.startswith(NAME_SLOT):
            filler = filler[:1].upper() + filler[1:]
        return self.text.replace(NAME_SLOT, filler)


@dataclass(frozen=True)
class ServiceGroup:
    """A community x gender with its first names, group term and reference group (a key of a group).

    ``terms``: the words naming the community's ethnicity, nationality, language or religion, which the
    taxonomy (:func:`lens_bias.metrics.service.service_category`) looks for in answers."""

    key: str
    label: str
    community: str
    gender: str
    reference: str
    term: str
    names: tuple[str, ...]
    terms: tuple[str, ...]

    @property
    def is_reference(self) -> bool:
        return self.reference == self.key


@dataclass(frozen=True)
class ServiceRequest:
    """One user message: ``template`` (key) filled with ``filler`` (a name of ``group``, or its term)."""

    id: str
    text: str
    template: str
    group: str
    filler: str
    slot: Slot


@cache
def service_system_prompt() -> str:
    """The system prompt of every request: fill the [BLANK] and reply with the whole sentence."""
    return str(load_resource("service_requests")["system_prompt"]).strip()


@cache
def service_templates() -> tuple[ServiceTemplate, ...]:
    """The 30 everyday templates, in file order."""
    templates = tuple(ServiceTemplate(**row) for row in load_resource("service_requests")["templates"])
    for template in templates:
        if template.text.count(NAME_SLOT) != 1 or template.text.count(BLANK_SLOT) != 1:
            raise ValueError(f"service template {template.key!r} needs one {NAME_SLOT} and one {BLANK_SLOT}")
    return templates


@cache
def service_groups() -> tuple[ServiceGroup, ...]:
    """The 12 groups (6 communities x men/women), in file order; reference groups name themselves."""
    data = load_resource("service_requests")
    terms = data["community_terms"]
    groups = tuple(
        ServiceGroup(
            **{**row, "names": tuple(row["names"]), "terms": tuple(terms[row["community"]])},
        )
        for row in data["groups"]
    )
    keys = {group.key for group in groups}
    for group in groups:
        reference = next((g for g in groups if g.key == group.reference), None)
        if reference is None or not reference.is_reference or reference.gender != group.gender:
            raise ValueError(f"service group {group.key!r}: reference {group.reference!r} must be a reference group")
    if len(keys) != len(groups):
        raise ValueError("service group keys must be unique")
    return groups


def service_group(key: str) -> ServiceGroup:
    """The group with ``key``."""
    for group in service_groups():
        if group.key == key:
            return group
    raise InputError(f"Unknown service group {key!r}: use one of {', '.join(g.key for g in service_groups())}.")


def service_requests(
    *, n_names: int | None = None, slot: Slot = "names", templates: Sequence[str] | None = None
) -> list[ServiceRequest]:
    """Every template x group x filler, template-major (then groups in file order, then fillers).

    ``slot="names"``: the fillers are each group's first ``n_names`` names (None: all 4); ``"terms"``: the group
    term alone. ``templates``: keys of the templates to keep (None: all, in file order). Ids:
    ``service-{template}-{group}-{k}`` (``k`` the name's index) or ``service-{template}-{group}-term``.
    """
    if slot not in SLOTS:
        raise InputError(f"slot must be one of {', '.join(SLOTS)}, got {slot!r}.")
    n_max = min(len(group.names) for group in service_groups())
    if n_names is not None and not 1 <= n_names <= n_max:
        raise InputError(f"n_names must be between 1 and {n_max} (names per group), got {n_names}.")
    chosen = list(service_templates())
    if templates is not None:
        by_key = {template.key: template for template in chosen}
        unknown = [key for key in templates if key not in by_key]
        if unknown or not templates:
            raise InputError(
                f"templates: unknown or empty {unknown}; use keys of service_templates(): {', '.join(by_key)}."
            )
        chosen = [by_key[key] for key in templates]
    out = []
    for template in chosen:
        for group in service_groups():
            fillers = [(str(k), name) for k, name in enumerate(group.names[:n_names])]
            for suffix, filler in fillers if slot == "names" else [("term", group.term)]:
                out.append(
                    ServiceRequest(
                        id=f"service-{template.key}-{group.key}-{suffix}",
                        text=template.fill(filler),
                        template=template.key,
                        group=group.key,
                        filler=filler,
                        slot=slot,
                    )
                )
    return out
