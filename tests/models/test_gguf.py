"""The converted-weights cache of GGUF files: written once and reused, verified on every load, a damaged entry
rebuilt with a warning, an interrupted or impossible write never a broken model."""

from __future__ import annotations

import warnings

import pytest
import torch

from lens_bias.models import load_model, model_record


@pytest.fixture
def tiny_gguf(tmp_path, monkeypatch, tiny_llama_dir):
    """``(gguf path, conversions)``: a stand-in GGUF file whose reading by transformers returns the tiny Llama
    (so the converted-weights cache is exercised in a second, not the embedded model's 30 s);
    ``conversions`` counts the GGUF reads, i.e. the cache (re)builds."""
    import transformers

    monkeypatch.setenv("LENS_BIAS_CACHE", str(tmp_path / "cache"))
    conversions: list[str] = []

    class FromTiny:
        def __init__(self, real, counts):
            self.real, self.counts = real, counts

        def from_pretrained(self, source, *args, gguf_file=None, **kwargs):
            if gguf_file is not None:
                conversions.extend([gguf_file] if self.counts else [])
                source = tiny_llama_dir
            return self.real.from_pretrained(source, *args, **kwargs)

    for name in ("AutoModelForCausalLM", "AutoTokenizer"):
        monkeypatch.setattr(transformers, name, FromTiny(getattr(transformers, name), name == "AutoModelForCausalLM"))
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"stand-in for a GGUF file")
    return gguf, conversions


def _cache_entry(tmp_path):
    (entry,) = [path for path in (tmp_path / "cache" / "converted").iterdir() if path.is_dir()]
    return entry


def _record(entry):
    return entry.with_name(entry.name + ".cache.json")


def _no_temporary_files(folder):
    return [p.name for p in folder.rglob("*") if p.name.endswith(".tmp")] == []


def test_gguf_cache_is_written_once_with_a_record_and_reused(tiny_gguf, tmp_path):
    gguf, conversions = tiny_gguf
    first = load_model(str(gguf), device="cpu")
    entry = _cache_entry(tmp_path)
    assert conversions == ["tiny.gguf"] and _record(entry).is_file() and _no_temporary_files(entry.parent)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        again = load_model(str(gguf), device="cpu")
    assert conversions == ["tiny.gguf"]  # read from the cache
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in first.state_dict().items())
    assert model_record(again).sha256 == model_record(first).sha256


def _overwrite_region(path):
    data = bytearray(path.read_bytes())
    data[-4000:-3000] = bytes(1000)  # same size, a region of weights zeroed
    path.write_bytes(bytes(data))


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


DAMAGE = {
    "weights overwritten, same size": lambda entry: _overwrite_region(entry / "weights.safetensors"),
    "weights truncated": lambda entry: _truncate(entry / "weights.safetensors"),
    "weights missing": lambda entry: (entry / "weights.safetensors").unlink(),
    "config truncated": lambda entry: _truncate(entry / "config.json"),
    "tokenizer overwritten": lambda entry: (entry / "tokenizer" / "tokenizer.json").write_text("{}"),
    "record missing": lambda entry: _record(entry).unlink(),
    "record malformed": lambda entry: _record(entry).write_text("{not json"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_gguf_cache_is_detected_and_rebuilt(tiny_gguf, tmp_path, damage):
    gguf, conversions = tiny_gguf
    reference = load_model(str(gguf), device="cpu").state_dict()
    DAMAGE[damage](_cache_entry(tmp_path))
    with pytest.warns(UserWarning, match=r"converted-weights cache of .*tiny\.gguf .* computing it again") as caught:
        rebuilt = load_model(str(gguf), device="cpu")
    (warning,) = [w for w in caught if issubclass(w.category, UserWarning)]
    assert "\n" not in str(warning.message)
    assert conversions == ["tiny.gguf", "tiny.gguf"]
    assert all(torch.equal(v, rebuilt.state_dict()[k]) for k, v in reference.items())
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        load_model(str(gguf), device="cpu")  # the rebuilt cache verifies
    assert len(conversions) == 2 and _no_temporary_files(tmp_path / "cache")


def test_an_interrupted_cache_write_leaves_no_usable_entry(tiny_gguf, tmp_path, monkeypatch):
    import lens_bias.models.gguf

    gguf, conversions = tiny_gguf
    real_save = lens_bias.models.gguf.save_file

    def save_half_then_interrupt(tensors, filename, *args, **kwargs):
        real_save(dict(list(tensors.items())[:3]), filename)
        raise KeyboardInterrupt

    monkeypatch.setattr(lens_bias.models.gguf, "save_file", save_half_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        load_model(str(gguf), device="cpu")
    monkeypatch.setattr(lens_bias.models.gguf, "save_file", real_save)
    assert _no_temporary_files(tmp_path / "cache")
    assert not list((tmp_path / "cache").rglob("weights.safetensors"))
    assert not list((tmp_path / "cache").rglob("*.cache.json"))
    with warnings.catch_warnings():  # nothing half-written is left to warn about: the next load converts again
        warnings.simplefilter("error", UserWarning)
        assert load_model(str(gguf), device="cpu").cfg.n_layers == 4 and len(conversions) == 2


def test_a_cache_that_cannot_be_written_still_gives_the_model(tiny_gguf, tmp_path, monkeypatch):
    import lens_bias.models.gguf

    gguf, _ = tiny_gguf

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(lens_bias.models.gguf, "save_file", disk_full)
    with pytest.warns(UserWarning, match="could not write the converted-weights cache.*No space left"):
        model = load_model(str(gguf), device="cpu")
    assert model.cfg.n_layers == 4 and _no_temporary_files(tmp_path / "cache")


def test_an_entry_without_its_record_is_rebuilt(tiny_gguf, tmp_path):
    """An entry folder whose record was never written (a write killed between the rename and the record, or an
    older lens_bias) is not trusted."""
    gguf, conversions = tiny_gguf
    load_model(str(gguf), device="cpu")
    _record(_cache_entry(tmp_path)).unlink()
    with pytest.warns(UserWarning, match=r"incomplete \(no record"):
        assert load_model(str(gguf), device="cpu").cfg.n_layers == 4
    assert len(conversions) == 2
