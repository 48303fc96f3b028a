"""The error policy: bad input from the caller raises lens_bias.errors.InputError, naming the parameter."""

from __future__ import annotations

import pytest
import torch

from lens_bias import ModelLoadError, load_model
from lens_bias.data import contrast_split
from lens_bias.data.gender_prompts import gender_pairs
from lens_bias.data.sampling import sample
from lens_bias.data.source import DataNotFoundError
from lens_bias.errors import InputError
from lens_bias.models import check_layers
from lens_bias.steering import contrast_activations


def test_the_user_error_types_are_input_errors_and_keep_their_old_bases():
    assert issubclass(InputError, ValueError)
    assert issubclass(ModelLoadError, InputError)
    assert issubclass(DataNotFoundError, InputError) and issubclass(DataNotFoundError, FileNotFoundError)


def test_an_unknown_model_name_is_an_input_error():
    with pytest.raises(InputError, match="Unknown model name 'no-such-model'"):
        load_model("no-such-model", device="cpu")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": 123}, r"name must be a model name or a path \(str\), got int 123"),
        ({"name": None}, "name must be a model name or a path"),
        ({"device": "bogus"}, "device 'bogus' is not a torch device"),
        ({"device": 0}, "device must be a string such as 'cpu' or 'cuda', got int 0"),
        ({"dtype": 32}, "dtype must be a torch.dtype or one of float32, float16, bfloat16, bf16_mixed; got int 32"),
        ({"dtype": "float8"}, "Unknown dtype 'float8'"),
        ({"processing": ["fold_ln"]}, "processing must be a dict"),
    ],
)
def test_load_model_rejects_wrong_types_naming_the_parameter_before_loading(kwargs, message):
    with pytest.raises(InputError, match=message):
        load_model(**{"device": "cpu", **kwargs})


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_load_model_refuses_cuda_without_cuda():
    with pytest.raises(InputError, match="device 'cuda': CUDA is not available"):
        load_model(device="cuda")


def test_an_unknown_contrast_is_an_input_error():
    with pytest.raises(InputError, match="Unknown contrast 'nope'"):
        contrast_split("nope")


def test_a_layer_out_of_range_is_an_input_error(tiny_model):
    with pytest.raises(InputError, match="Layer 99 is outside the model"):
        check_layers(tiny_model, [99])
    with pytest.raises(InputError, match="Layer 99 is outside the model"):
        contrast_activations(tiny_model, gender_pairs()[:2], [99])


@pytest.mark.parametrize("n", [0, -3])
def test_a_zero_or_negative_sample_size_is_an_input_error(n):
    with pytest.raises(InputError, match=f"n must be >= 1, got {n}; pass n=None"):
        sample([1, 2, 3], n, seed=0)
