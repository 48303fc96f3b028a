"""Where the cells of a sweep are computed: in this process, or as Ray tasks on workers that each hold a model.

A sweep (:meth:`lens_bias.cells.CellStore.map`) hands an executor one function ``compute(model, payload)``
and the payloads of the cells that are not finished yet; the executor calls ``done(index, arrays)`` as
each cell finishes (the store saves it at once, so an interrupted sweep keeps every finished cell).

- :class:`Serial` (the default) runs every cell in this process on the model it is given.
- :class:`RayExecutor` runs them on a Ray cluster (``address``) or a local Ray instance: ``workers`` actors,
  each loading its own copy of the model once from a :class:`ModelSpec` (one per GPU, or a share of the
  CPU cores), take cells as they free up (at most two in flight each), so slow and fast workers balance.
  The driver shows one progress bar over all workers. A worker that dies (a crash, an out-of-memory kill,
  a lost node) is restarted and its cells are run again, up to ``max_retries`` times; after that the
  sweep stops with an error, and the finished cells are in the store for the rerun.

``compute`` must take the model as its argument and not close over one: it is pickled once per sweep
and sent to every worker (a model inside it would be copied to each worker instead of using theirs).
The workers check that they loaded the model the driver's cells are keyed by (same record, device aside).

An ``address`` of the form ``host:port`` or ``ray://host:port`` is checked before ``ray.init`` (which would retry
forever): :func:`lens_bias.addresses.check_ray_address`.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from lens_bias.addresses import check_ray_address
from lens_bias.errors import InputError
from lens_bias.models import AnyModel, load_model, model_record

Arrays = dict[str, np.ndarray]
#: What a cell computes: ``compute(model, payload) -> {name: array}``.
Compute = Callable[[AnyModel, Any], Arrays]
#: Called with ``(index into the payloads, arrays)`` as each cell finishes.
Done = Callable[[int, Arrays], None]


class Executor(Protocol):
    """Runs ``compute(model, payload)`` for every payload and reports each with ``done(index, arrays)``."""

    def map(
        self, model: AnyModel, compute: Compute, payloads: Sequence[Any], done: Done, *, desc: str, progress: bool
    ) -> None: ...


class Serial:
    """Every cell in this process, in order, on the model :meth:`map` is given."""

    def map(
        self, model: AnyModel, compute: Compute, payloads: Sequence[Any], done: Done, *, desc: str, progress: bool
    ) -> None:
        for index, payload in enumerate(tqdm(payloads, desc=desc, disable=not progress, unit="cell")):
            done(index, compute(model, payload))


@dataclass(frozen=True)
class ModelSpec:
    """How a worker loads its model: the arguments of :func:`lens_bias.load_model` (``dtype`` as a name,
    e.g. ``"float16"``; ``device`` None: CUDA when the worker has a GPU, else CPU)."""

    name: str
    device: str | None = None
    dtype: str | None = None
    revision: str | None = None
    processing: dict[str, bool] | None = field(default=None, hash=False)

    def load(self) -> AnyModel:
        return load_model(
            self.name, device=self.device, dtype=self.dtype, revision=self.revision, processing=self.processing
        )


def _identity(model: AnyModel) -> dict[str, Any]:
    """The model's record without its device (a worker's GPU is not the driver's)."""
    record = model_record(model).to_dict()
    record.pop("device")
    return record


class _Worker:
    """A Ray actor's state: one loaded model and the sweep functions it has been sent (cached by id)."""

    def __init__(self, spec: ModelSpec, threads: int | None) -> None:
        if threads is not None:
            torch.set_num_threads(threads)
        self.model = spec.load()
        self.functions: dict[str, Compute] = {}

    def identity(self) -> dict[str, Any]:
        return _identity(self.model)

    def run(self, key: str, function_ref: list[Any], payload: Any) -> Arrays:
        import ray

        if key not in self.functions:
            self.functions = {key: ray.get(function_ref[0])}  # one sweep at a time: keep only its function
        with torch.inference_mode():
            return self.functions[key](self.model, payload)


def _closes_over_model(compute: Compute) -> bool:
    """Whether ``compute`` (a function or a partial) holds a torch module in its closure or bound arguments."""
    values: list[Any] = []
    while isinstance(compute, partial):
        values += [*compute.args, *compute.keywords.values()]
        compute = compute.func
    values += [cell.cell_contents for cell in getattr(compute, "__closure__", None) or () if _filled(cell)]
    bound = getattr(compute, "__self__", None)
    values += [bound] if bound is not None else []
    return any(isinstance(v, torch.nn.Module) for v in values)


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty closure cell raises ValueError
    except ValueError:
        return False
    return True


class RayExecutor:
    """Cells as Ray tasks on ``workers`` actors that each hold a model loaded from ``spec``.

    Args:
        spec: how each worker loads its model (the same model the driver loaded: checked).
        address: an existing cluster (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``); None starts a
            local Ray instance with ``workers * cpus_per_worker`` CPUs, shut down when the executor closes.
        workers: how many actors (default: one per GPU of the cluster if the spec's device is CUDA or the
            cluster has GPUs, else one per ``cpus_per_worker`` CPUs).
        cpus_per_worker: CPU cores each actor reserves (and its torch threads on a CPU worker).
        gpus_per_worker: GPUs each actor reserves (default 1 when the cluster has GPUs and ``spec.device`` is
            not ``"cpu"``, else 0).
        max_retries: how often a dead worker is restarted and its cells run again.

    A cell's numbers are bit-for-bit the serial run's when the driver runs torch with as many threads as a
    worker (``cpus_per_worker``); with another thread count, CPU matrix products sum in another order and
    results differ in the last bits (about 1e-4 relative on patching scores, measured).

    Use as a context manager (or call :meth:`close`) so a local instance is shut down.
    """

    def __init__(
        self,
        spec: ModelSpec,
        *,
        address: str | None = None,
        workers: int | None = None,
        cpus_per_worker: int = 1,
        gpus_per_worker: float | None = None,
        max_retries: int = 3,
    ) -> None:
        try:
            import ray
        except ImportError as error:
            raise InputError(
                "--executor ray needs Ray: pip install 'lens_bias[cluster]' (or pip install ray)."
            ) from error
        if workers is not None and workers < 1:
            raise InputError(f"workers must be >= 1, got {workers}.")
        if cpus_per_worker < 1:
            raise InputError(f"cpus_per_worker must be >= 1, got {cpus_per_worker}.")
        self.spec = spec
        self._owns = not ray.is_initialized() and address is None
        if not ray.is_initialized():
            if address is None:
                local = (workers or max(1, (os.cpu_count() or 1) // cpus_per_worker)) * cpus_per_worker
                ray.init(num_cpus=local, include_dashboard=False, log_to_driver=False, configure_logging=False)
            else:
                check_ray_address(address)
                try:
                    ray.init(address=address, log_to_driver=False, configure_logging=False)
                except (ConnectionError, RuntimeError, ValueError) as error:
                    raise InputError(f"Cannot reach a Ray cluster at --address {address}: {error}") from error
        resources = ray.cluster_resources()
        if gpus_per_worker is None:  # a whole GPU each when there are GPUs and the model is not meant for the CPU
            gpus_per_worker = 0.0 if spec.device == "cpu" else min(float(resources.get("GPU", 0)), 1.0)
        self.gpus_per_worker = gpus_per_worker
        if workers is None:
            if self.gpus_per_worker > 0:
                workers = max(1, int(float(resources.get("GPU", 0)) // self.gpus_per_worker))
            else:
                workers = max(1, int(float(resources.get("CPU", 1)) // cpus_per_worker))
        self.workers = workers
        actor = ray.remote(
            num_cpus=cpus_per_worker,
            num_gpus=self.gpus_per_worker,
            max_restarts=max_retries,
            max_task_retries=max_retries,
        )(_Worker)
        threads = cpus_per_worker if self.gpus_per_worker == 0 else None
        self._actors: list[Any] = [actor.remote(spec, threads) for _ in range(workers)]
        self._identity: dict[str, Any] | None = None
        self._sweeps = 0

    def _check(self, model: AnyModel) -> None:
        import ray

        if self._identity is None:
            identities = ray.get([a.identity.remote() for a in self._actors])
            self._identity = identities[0]
            if any(identity != self._identity for identity in identities):
                raise InputError("The Ray workers loaded different models: install the same files on every node.")
        if self._identity != _identity(model):
            raise InputError(
                f"The Ray workers loaded {self._identity['name']!r} ({self._identity['source']}), not the model this "
                "run's cells are keyed by: give the workers the model the driver loaded (--model, --dtype)."
            )

    def map(
        self, model: AnyModel, compute: Compute, payloads: Sequence[Any], done: Done, *, desc: str, progress: bool
    ) -> None:
        import ray
        from ray.exceptions import RayActorError, RayTaskError

        if not payloads:
            return
        if _closes_over_model(compute):
            raise TypeError("compute closes over a model: take it as the first argument (see lens_bias.executors).")
        self._check(model)
        self._sweeps += 1
        key, function = f"sweep-{self._sweeps}", [ray.put(compute)]
        pending = deque(range(len(payloads)))
        running: dict[Any, tuple[int, Any]] = {}

        def submit(actor: Any) -> None:
            index = pending.popleft()
            running[actor.run.remote(key, function, payloads[index])] = (index, actor)

        with tqdm(total=len(payloads), desc=desc, disable=not progress, unit="cell") as bar:
            bar.set_postfix(workers=self.workers)
            for _ in range(2):
                for actor in self._actors:
                    if pending:
                        submit(actor)
            while running:
                (ref,), _ = ray.wait(list(running), num_returns=1)
                index, actor = running.pop(ref)
                try:
                    arrays = ray.get(ref)
                except RayTaskError as error:
                    raise error.as_instanceof_cause() from None
                except RayActorError as error:
                    raise RuntimeError(
                        f"A Ray worker died more than its retries allow while computing cell {index}; the finished "
                        "cells are saved: rerun the same command to go on."
                    ) from error
                done(index, arrays)
                bar.update()
                if pending:
                    submit(actor)

    def close(self) -> None:
        import ray

        for actor in self._actors:
            ray.kill(actor)
        self._actors = []
        if self._owns:
            ray.shutdown()

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
