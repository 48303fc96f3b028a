"""The fine-tuning experiment: a bad CSV or bad sizes are refused before any model loads; end to end on the tiny
model it trains, rewrites before and after, saves and prints its table, and a second run reuses the fine-tune."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from experiments import commands
from experiments import finetune as finetune_experiment
from lens_bias.debias.lora import train as lora_train
from lens_bias.debias.rewrites import RewritePair, load_rewrite_pairs, split_rewrites, write_rewrite_pairs
from lens_bias.errors import InputError
from lens_bias.figures.index import render_index

UNUSED_MODEL = "no-such-model"  # loading it would fail differently: these errors come first


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--held-out", "1.5"], "held_out must be a share in"),
    ],
)
def test_bad_settings_are_refused_before_the_model_loads(no_model, argv, message, tmp_path):
    with pytest.raises(InputError, match=message):
        finetune_experiment.main(["--model", UNUSED_MODEL, "--out", str(tmp_path), *argv])


def test_a_csv_without_the_required_columns_is_refused_before_the_model_loads(no_model, tmp_path):
    data = tmp_path / "pairs.csv"
    data.write_text("text,rewrite\na,b\n", encoding="utf-8")
    with pytest.raises(InputError, match="lacks the required column"):
        finetune_experiment.main(["--model", UNUSED_MODEL, "--data", str(data), "--out", str(tmp_path)])


def test_the_experiment_trains_evaluates_and_reuses(tiny_long_dir, tmp_path, monkeypatch, capsys):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the tiny model's small ops run much faster on one thread of a shared machine
    try:
        argv = ["--model", str(tiny_long_dir), "--device", "cpu", "--quick", "--max-steps", "2", "--n-eval", "4"]
        argv += ["--max-new-tokens", "3", "--out", str(tmp_path)]
        from lens_bias import models

        loaded: list[str] = []
        real_load = models.load_model
        monkeypatch.setattr(models, "load_model", lambda name, **kw: loaded.append(str(name)) or real_load(name, **kw))
        result = finetune_experiment.main(argv)
        assert loaded == [str(tiny_long_dir), str(tmp_path / "model")]  # the base model loads once, the tuned once
        values = result.values
        assert values["finetune"]["steps"] == 2 and not values["finetune"]["reused"]
        assert values["n_pairs"]["evaluated"] == 4 and values["n_pairs"]["train"] + values["n_pairs"]["held_out"] == 347
        assert values["before"]["retention"]["n"] == 4 and len(values["after"]["rewrites"]) == 4
        assert result.config["recipe"]["r"] == 64 and result.provenance["data"]["train"] == values["finetune"]["data"]
        printed = capsys.readouterr().out
        assert "content retention" in printed and "stereotype kept" in printed
        assert (tmp_path / "model" / "config.json").is_file() and (tmp_path / "finetune.json").is_file()
        frame = result.to_frame()  # per rewrite: before, after, the data's own; the same rows from the CSV
        assert len(frame) == 4 * 3 and set(frame["condition"]) == {"before", "after", "reference"}
        assert list(frame[frame["condition"] == "after"]["rewrite"]) == values["after"]["rewrites"]
        assert len(pd.read_csv(tmp_path / "finetune.items.csv")) == len(frame)
        index = render_index(tmp_path, commands.experiment)  # its section: command, headline numbers
        assert "## finetune: [`finetune.json`]" in index and finetune_experiment.summarize(result) in index

        def no_training(*args, **kwargs):
            raise AssertionError("the saved fine-tune was trained again")

        monkeypatch.setattr(lora_train, "train_lora", no_training)
        again = finetune_experiment.main(argv)
        assert again.values["finetune"]["reused"] and again.values["after"] == values["after"]
        replot = finetune_experiment.main(["--replot", str(tmp_path / "finetune.json")])
        assert replot.values == again.values
    finally:
        torch.set_num_threads(threads)


def _never_trained(*args, **kwargs):
    raise AssertionError("the model was trained before the data was checked")


def _write_pairs(path, texts, long_held_out: str | None = None):
    """A rewrite CSV of 8 pairs of ``texts`` (numbered); with ``long_held_out``, that biased text on the pairs
    :func:`split_rewrites` holds out (``--held-out 0.5``, seed 0)."""
    rows = [(f"{texts[0]} {n}", f"{texts[1]} {n}") for n in range(8)]
    write_rewrite_pairs([RewritePair(f"row-{n + 1}", *row) for n, row in enumerate(rows)], path)
    if long_held_out is not None:
        _, held = split_rewrites(load_rewrite_pairs(path), 0.5, 0)
        held_ids = {pair.id for pair in held}
        assert held_ids and len(held_ids) < 8
        rows = [(long_held_out if f"row-{n + 1}" in held_ids else row[0], row[1]) for n, row in enumerate(rows)]
        write_rewrite_pairs([RewritePair(f"row-{n + 1}", *row) for n, row in enumerate(rows)], path)


@pytest.mark.fault
@pytest.mark.parametrize(
    "texts, long_held_out, message",
    [
        (("Женщины плохо водят машину", "Женщины водят машину по-разному"), None, "has a content word to keep"),
        (("Drivers are bad", "Drivers differ"), " ".join(["drivers"] * 3000), r"\d+ tokens.* context of 1024 tokens"),
    ],
    ids=["non-latin", "too-long"],
)
def test_held_out_texts_that_cannot_be_scored_are_refused_before_training(
    tiny_long_dir, tmp_path, monkeypatch, texts, long_held_out, message
):
    _write_pairs(tmp_path / "pairs.csv", texts, long_held_out)
    monkeypatch.setattr(lora_train, "train_lora", _never_trained)
    argv = ["--model", str(tiny_long_dir), "--device", "cpu", "--data", str(tmp_path / "pairs.csv")]
    with pytest.raises(InputError, match=message):
        finetune_experiment.main([*argv, "--held-out", "0.5", "--max-new-tokens", "3", "--out", str(tmp_path / "o")])
