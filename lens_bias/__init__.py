"""lens_bias: mechanistic interpretability of social bias in LLMs, on TransformerLens.

The public names below load on first use (PEP 562): ``import lens_bias.errors`` (what every command line
needs for its ``--help``) does not import torch or TransformerLens.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lens_bias.errors import InputError
    from lens_bias.models import ModelLoadError, ModelRecord, load_model, model_record
    from lens_bias.prompts import ChatTemplate, template_for

#: Each public name and the module that defines it.
_HOMES = {
    "ChatTemplate": "lens_bias.prompts",
    "InputError": "lens_bias.errors",
    "ModelLoadError": "lens_bias.models",
    "ModelRecord": "lens_bias.models",
    "load_model": "lens_bias.models",
    "model_record": "lens_bias.models",
    "template_for": "lens_bias.prompts",
}

__all__ = ["ChatTemplate", "InputError", "ModelLoadError", "ModelRecord", "load_model", "model_record", "template_for"]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'lens_bias' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
