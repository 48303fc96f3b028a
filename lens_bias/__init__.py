"""lens_bias: mechanistic interpretability of social bias in LLMs, on TransformerLens."""

from lens_bias.errors import InputError
from lens_bias.models import ModelLoadError, ModelRecord, load_model, model_record
from lens_bias.prompts import ChatTemplate, template_for

__all__ = ["ChatTemplate", "InputError", "ModelLoadError", "ModelRecord", "load_model", "model_record", "template_for"]
