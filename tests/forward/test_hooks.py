"""The hook context restores exactly the hooks that were there, also after an exception."""

from __future__ import annotations

import pytest

from lens_bias.errors import InputError
from lens_bias.interventions import ForwardContext, applied, check_interventions, hooks_added
from lens_bias.prompts import ChatTemplate, chat_batch


def _snapshot(model):
    return {name: list(hp.fwd_hooks) for name, hp in model.hook_dict.items() if hp.fwd_hooks}


def test_user_hooks_survive_and_ours_are_removed_after_an_error(tiny_model):
    seen = []
    user_hook = tiny_model.hook_dict["blocks.0.hook_resid_post"]
    user_hook.add_hook(lambda act, hook: seen.append(hook.name))
    before = _snapshot(tiny_model)
    batch = chat_batch(tiny_model.tokenizer, ChatTemplate("plain"), ["hello"])

    def boom(act, hook):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"), hooks_added(tiny_model, [("blocks.1.hook_resid_post", boom)]):
        tiny_model(batch.tokens)
    assert _snapshot(tiny_model) == before
    tiny_model(batch.tokens)
    assert seen  # the user's hook still fires
    user_hook.remove_hooks()


def test_unknown_hook_name_is_a_clear_error(tiny_model):
    with (
        pytest.raises(ValueError, match="Unknown hook point"),
        hooks_added(tiny_model, [("blocks.99.hook_resid_post", lambda a, hook: a)]),
    ):
        pass


class _Recorder:
    def __init__(self):
        self.offsets = []

    def hooks(self, model, context):
        return [("blocks.0.hook_resid_pre", lambda act, hook: self.offsets.append(context.offset))]

    def describe(self):
        return {"kind": "recorder"}

    def check(self, model):
        pass


def test_hooks_read_the_context_at_call_time(tiny_model):
    batch = chat_batch(tiny_model.tokenizer, ChatTemplate("plain"), ["hello"])
    recorder = _Recorder()
    with applied(tiny_model, [recorder], ForwardContext(batch)) as context:
        tiny_model(batch.tokens)
        context.offset = 7
        tiny_model(batch.tokens)
    assert recorder.offsets == [0, 7]
    assert not _snapshot(tiny_model)


class _Unfit(_Recorder):
    """An intervention that does not fit the model: its check refuses it."""

    def check(self, model):
        raise InputError("does not fit this model")


def test_applied_checks_every_intervention_before_adding_hooks(tiny_model):
    batch = chat_batch(tiny_model.tokenizer, ChatTemplate("plain"), ["hello"])
    recorder, unfit = _Recorder(), _Unfit()
    with pytest.raises(InputError, match="does not fit"), applied(tiny_model, [recorder, unfit], ForwardContext(batch)):
        tiny_model(batch.tokens)
    assert recorder.offsets == [] and unfit.offsets == [] and not _snapshot(tiny_model)
    with pytest.raises(InputError, match="does not fit"):
        check_interventions(tiny_model, [recorder, unfit])
