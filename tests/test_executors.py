"""Executors: a local Ray instance of 2 CPUs gives exactly the serial result, reschedules the cells of a
worker that dies, and refuses a sweep it cannot run right."""

from __future__ import annotations

import os
import sys
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

from lens_bias.audit.bbq import BBQMeasure
from lens_bias.audit.crows_pairs import CrowsPairsMeasure
from lens_bias.audit.run import score_rows
from lens_bias.cells import CellStore
from lens_bias.directions import SteeringVector
from lens_bias.errors import InputError
from lens_bias.executors import ModelSpec, RayExecutor, Serial
from lens_bias.interventions import AddVector

pytest.importorskip("ray", reason="the Ray executor tests need ray (the test extra installs it)")


@pytest.fixture(scope="module")
def ray_pool(tiny_long_dir):
    """Two workers on a local Ray instance with 2 CPUs, each holding the tiny Llama loaded from its folder."""
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import the tests
    # the test suite's jaxtyping import hook wraps every lens_bias function and keeps a weak reference to
    # the wrapper in its closure; outside the tests there is none. Send the referent; rebuild the reference.
    ray.util.register_serializer(weakref.ReferenceType, serializer=lambda ref: ref(), deserializer=weakref.ref)
    with RayExecutor(ModelSpec(str(tiny_long_dir), device="cpu"), workers=2) as pool:
        yield pool


@contextmanager
def threads(n: int) -> Iterator[None]:
    """Run the driver's torch with ``n`` threads, as a worker does, and restore its count after."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _token_sum(model, payload):
    """A cell that reads the model: the sum of the logits of a few tokens (depends on every weight)."""
    ids = torch.tensor([payload])
    return {"sum": model(ids)[0, -1].detach().double().sum().reshape(1).numpy(), "pid": np.array([os.getpid()])}


def test_ray_gives_the_serial_audit_rows_exactly(ray_pool, tiny_long_model, tmp_path):
    vector = SteeringVector(
        "v",
        (1,),
        torch.randn(1, tiny_long_model.cfg.d_model, generator=torch.Generator().manual_seed(0)),
        torch.ones(1),
    )
    measures = [CrowsPairsMeasure(n=12, seed=0, chunk=4), BBQMeasure(n=1, seed=0, chunk=4)]
    for measure in measures:
        for interventions in ([], [AddVector(vector, 2.0, [1], start=None)]):
            serial = score_rows(tiny_long_model, measure, interventions, cells=tmp_path / "serial", batch_size=4)
            on_ray = score_rows(
                tiny_long_model, measure, interventions, cells=tmp_path / "ray", batch_size=4, executor=ray_pool
            )
            assert serial.keys() == on_ray.keys()
            for name in serial:
                np.testing.assert_array_equal(on_ray[name], serial[name], err_msg=f"{measure.name}/{name}")
    # the same cells under the same keys: which executor ran a cell is not part of its key
    assert sorted(p.name for p in (tmp_path / "ray").iterdir()) == sorted(
        p.name for p in (tmp_path / "serial").iterdir()
    )


def test_cells_spread_over_both_workers_in_order(ray_pool, tiny_long_model, tmp_path):
    payloads = [[1, 2, 3 + i] for i in range(8)]
    cells = [{"i": i} for i in range(8)]
    on_ray = CellStore(tmp_path / "ray", executor=ray_pool).map(
        cells, payloads, _token_sum, model=tiny_long_model, desc="x"
    )
    serial = CellStore(None).map(cells, payloads, _token_sum, model=tiny_long_model, desc="x")
    assert [c["sum"][0] for c in on_ray] == [c["sum"][0] for c in serial]
    assert len({int(c["pid"][0]) for c in on_ray}) == 2, "both workers took cells"
    assert os.getpid() not in {int(c["pid"][0]) for c in on_ray}


def test_a_worker_that_dies_has_its_cell_rerun(ray_pool, tiny_long_model, tmp_path):
    marker = tmp_path / "died-once"

    def dies_once_on_cell_3(model, payload):
        if payload[-1] == 3 + 3 and not marker.exists():
            marker.touch()
            os._exit(1)  # the worker process is gone, as when a node is lost or the OOM killer strikes
        return _token_sum(model, payload)

    payloads = [[1, 2, 3 + i] for i in range(6)]
    cells = [{"i": i} for i in range(6)]
    store = CellStore(tmp_path / "cells", executor=ray_pool)
    out = store.map(cells, payloads, dies_once_on_cell_3, model=tiny_long_model, desc="x")
    expected = CellStore(None).map(cells, payloads, _token_sum, model=tiny_long_model, desc="x")
    assert marker.exists(), "the worker did die"
    assert [c["sum"][0] for c in out] == [c["sum"][0] for c in expected]
    assert store.computed == 6 and len(list((tmp_path / "cells").glob("*.safetensors"))) == 6


def test_an_error_in_a_cell_reaches_the_driver_with_its_type(ray_pool, tiny_long_model, tmp_path):
    def refuses(model, payload):
        if payload == 2:
            raise InputError("cell 2 is bad")
        return {"x": np.array([payload])}

    store = CellStore(tmp_path, executor=ray_pool)
    with pytest.raises(InputError, match="cell 2 is bad"):
        store.map([{"i": i} for i in range(4)], list(range(4)), refuses, model=tiny_long_model, desc="x")
    assert store.get({"i": 2}) is None


def test_a_compute_that_holds_a_model_is_refused(ray_pool, tiny_long_model):
    def holds(model, payload):
        return {"x": tiny_long_model(torch.tensor([[1]])).detach().numpy()}

    with pytest.raises(TypeError, match="closes over a model"):
        ray_pool.map(tiny_long_model, holds, [1], lambda i, a: None, desc="x", progress=False)


def test_workers_with_another_model_than_the_driver_are_refused(ray_pool, tiny_model):
    with pytest.raises(InputError, match="not the model this run's cells are keyed by"):
        ray_pool.map(tiny_model, _token_sum, [[1, 2]], lambda i, a: None, desc="x", progress=False)


def test_serial_runs_in_process(tiny_long_model):
    got: list[tuple[int, int]] = []
    Serial().map(
        tiny_long_model,
        _token_sum,
        [[1], [2]],
        lambda i, a: got.append((i, int(a["pid"][0]))),
        desc="x",
        progress=False,
    )
    assert got == [(0, os.getpid()), (1, os.getpid())]


def test_ray_options_are_checked():
    with pytest.raises(InputError, match="workers must be >= 1"):
        RayExecutor(ModelSpec("x"), workers=0)


def test_model_spec_is_what_a_worker_loads(tiny_llama_dir):
    model = ModelSpec(str(Path(tiny_llama_dir)), device="cpu").load()
    assert model.lens_bias_record.source.endswith("tiny-llama-2-chat")


def test_ray_gives_the_serial_patching_and_steering_sweep(ray_pool, tiny_long_model, tmp_path):
    from lens_bias.metrics import likelihood_preference
    from lens_bias.patching import logit_diff_metric, patch
    from lens_bias.prompts import PromptBatch
    from lens_bias.steering import sweep

    tokens = torch.randint(3, 200, (3, 6), generator=torch.Generator().manual_seed(0))
    swapped = tokens.clone()
    swapped[:, 2] = 3 + (tokens[:, 2] + 17) % 197
    lengths = torch.tensor([6, 6, 6])
    clean, corrupted = (PromptBatch(t, lengths, {"last": lengths - 1}, ["a", "b", "c"]) for t in (tokens, swapped))
    metric = logit_diff_metric([5, 6, 9], [7, 8, 10])
    results = []
    for executor in (None, ray_pool):
        store = CellStore(tmp_path / str(executor is None), {"m": 0}, executor=executor)
        with threads(1):  # a worker's count (cpus_per_worker=1): the same summation order
            results.append(patch(tiny_long_model, clean, corrupted, metric, target="z", batch_size=6, cells=store))
    assert results[0].config["n_cells"] > 1
    torch.testing.assert_close(results[1].scores, results[0].scores, rtol=0, atol=0, equal_nan=True)

    from lens_bias.data import contrast_split

    test = contrast_split("gender", n_train=4, n_test=6, seed=0).test
    vector = SteeringVector("v", (1, 2), torch.randn(2, tiny_long_model.cfg.d_model), torch.ones(2))

    def preference(model, steer):
        return likelihood_preference(model, test, interventions=steer, batch_size=4).mean_logprob_diff.to_dict()

    with threads(1):
        rows = [
            sweep(
                tiny_long_model,
                vector,
                [1, 2],
                [-2, 0, 2],
                preference,
                cells=CellStore(None, executor=executor),
                start=None,
            )
            for executor in (None, ray_pool)
        ]
    assert rows[0] == rows[1] and len(rows[0]) == 6


def test_ray_gives_the_serial_circuit_sweeps(ray_pool, tiny_long_model, tmp_path):
    from lens_bias.circuits.study import circuit_study
    from lens_bias.patching import PatchingInputs
    from lens_bias.prompts import PromptBatch

    tokens = torch.randint(3, 200, (2, 5), generator=torch.Generator().manual_seed(1))
    swapped = tokens.clone()
    swapped[:, 1] = 3 + (tokens[:, 1] + 17) % 197
    lengths = torch.tensor([5, 5])
    clean, corrupted = (PromptBatch(t, lengths, {"last": lengths - 1}, ["a", "b"]) for t in (tokens, swapped))
    inputs = PatchingInputs([], clean, corrupted, torch.tensor([5, 6]), torch.tensor([7, 8]), {})
    tensors = []
    for executor in (None, ray_pool):
        store = CellStore(tmp_path / str(executor is None), {"m": 0}, executor=executor)
        with threads(1):  # a worker's count (cpus_per_worker=1): the same summation order
            settings = {"method": "eap", "sizes": (5, 50), "n_random": 1, "n_edges": 12, "batch_size": 2}
            values, study = circuit_study(tiny_long_model, inputs, cells=store, **settings)  # type: ignore[arg-type]
        assert values["timing"]["cells_computed"] > 2  # both sweeps in several cells
        tensors.append(study)
    for name in ("exact_effects", "faithfulness", "random_faithfulness", "completeness"):
        torch.testing.assert_close(tensors[1][name], tensors[0][name], rtol=0, atol=0, equal_nan=True)
