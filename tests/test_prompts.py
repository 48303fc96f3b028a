"""Templates, tokenization, positions."""

from __future__ import annotations

import pytest

from lens_bias.data.records import ABItem
from lens_bias.prompts import (
    ChatTemplate,
    ab_batch,
    chat_batch,
    continuation_batch,
    document_start_id,
    letter_token_ids,
    template_for,
    tokenize,
)

ITEM = ABItem(
    id="x",
    bias_type="gender",
    target="nurse",
    question="Who is the nurse?",
    choices=("a woman", "a man"),
    positive_letter="A",
    source="test",
)


def test_llama2_template_with_system_block(tiny_model):
    template = ChatTemplate("llama-2-chat", system="Be brief.")
    text, end = template.render(tiny_model.tokenizer, "Hi", "(A")
    assert text == "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] (A"
    assert text[:end].endswith("[/INST]")
    assert template_for(tiny_model).name == "llama-2-chat"  # name 'tiny-llama-2-chat'


def test_plain_template_and_missing_chat_template(tiny_model):
    text, end = ChatTemplate("plain").render(tiny_model.tokenizer, "Question?", "Sure")
    assert text == "Input: Question?\nResponse: Sure" and text[:end] == "Input: Question?\nResponse:"
    with pytest.raises(ValueError, match="no chat template"):
        ChatTemplate("hf-chat").render(tiny_model.tokenizer, "Hi")


def test_positions_point_at_the_right_tokens(tiny_model):
    tok = tiny_model.tokenizer
    template = ChatTemplate("llama-2-chat")
    batch = ab_batch(tok, template, [ITEM, ITEM], letters=["A", "B"])
    for row in range(2):
        ids = batch.tokens[row]
        assert ids[0] == document_start_id(tok)  # BOS added once, by tokenize
        assert tok.decode(ids[batch.positions["answer"][row]]).strip() == "AB"[row]
        assert tok.decode(ids[: batch.positions["instruction_end"][row] + 1]).endswith("[/INST]")
        assert batch.positions["last"][row] == batch.lengths[row] - 1


def test_right_padding_and_slicing(tiny_model):
    batch = chat_batch(tiny_model.tokenizer, ChatTemplate("plain"), ["short", "a much longer question here"], "Sure")
    assert batch.lengths[0] < batch.lengths[1] == batch.tokens.shape[1]
    first = batch[0:1]
    assert first.tokens.shape[1] == batch.lengths[0]
    assert list(batch.positions) == ["last", "instruction_end", "continuation"]


def test_continuation_moves_prompt_whitespace_into_the_continuation(tiny_model):
    tok = tiny_model.tokenizer
    batch = continuation_batch(tok, ["The nurse walked in and "], ["she smiled."])
    assert batch.texts == ["The nurse walked in and she smiled."]
    start = batch.positions["continuation"][0]
    assert tok.decode(batch.tokens[0, start : batch.lengths[0]]) == " she smiled."


def test_hf_chat_template_on_embedded_model(smollm):
    template = template_for(smollm)
    assert template.name == "hf-chat" and not template.adds_bos
    batch = ab_batch(smollm.tokenizer, template, [ITEM])
    assert batch.texts[0].endswith("<|im_start|>assistant\n(")
    assert batch.tokens[0, 0] == smollm.tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert (batch.tokens[0] == batch.tokens[0, 0]).sum() == 3  # system, user, assistant: no extra BOS
    assert letter_token_ids(smollm.tokenizer) == tuple(smollm.tokenizer.convert_tokens_to_ids(["A", "B"]))


def test_bad_input_is_named(tiny_model):
    tok = tiny_model.tokenizer
    with pytest.raises(ValueError, match="empty"):
        tokenize(tok, [], add_start=True)
    with pytest.raises(ValueError, match="pair up"):
        continuation_batch(tok, ["a", "b"], ["c"])
    with pytest.raises(ValueError, match="Empty continuation"):
        continuation_batch(tok, ["a"], ["  "])
    with pytest.raises(ValueError, match="'A' or 'B'"):
        ab_batch(tok, ChatTemplate("plain"), [ITEM], letters=["C"])
    with pytest.raises(ValueError, match="Unknown template"):
        ChatTemplate("nope").render(tok, "x")  # type: ignore[arg-type]


def test_document_start_token(tiny_model, smollm):
    # SmolLM2's GGUF tokenizer marks <|endoftext|> (id 0) as unk too: it must still be chosen
    assert smollm.tokenizer.convert_ids_to_tokens(document_start_id(smollm.tokenizer)) == "<|endoftext|>"
    assert document_start_id(tiny_model.tokenizer) == tiny_model.tokenizer.bos_token_id  # no <|endoftext|>
