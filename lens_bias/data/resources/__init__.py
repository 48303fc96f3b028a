"""Reads the package's YAML resource files: the handwritten prompt sets and phrase lists, as plain data.

The files sit next to this module and ship with the package (``package-data`` in pyproject.toml); they are
read through :mod:`importlib.resources`, so a non-editable install finds them too. Each file documents its
sets (sources, rules) in comments; the typed, cached loaders that turn them into records live in the module
named in the file's first line (e.g. :mod:`lens_bias.data.gender_prompts` for ``gender.yaml``).
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import yaml

#: The resource files, by name (``{name}.yaml``).
RESOURCES = (
    "alignez_questions",
    "debias_templates",
    "gender",
    "injection",
    "knowledge",
    "neutral",
    "personas",
    "refusal",
    "response_phrases",
    "service_phrases",
    "service_requests",
)


def load_resource(name: str) -> dict[str, Any]:
    """The parsed top-level mapping of resource ``name`` (one of :data:`RESOURCES`); a fresh copy per call."""
    if name not in RESOURCES:
        raise ValueError(f"Unknown resource {name!r}: use one of {', '.join(RESOURCES)}.")
    text = files(__name__).joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"Resource {name}.yaml must hold a mapping at the top level, got {type(data).__name__}.")
    return data
