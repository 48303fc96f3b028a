"""Shared by test_inject.py, localize/test_controls.py and test_side_effects.py: one BiasInject run on the real
model per test session (few steps: enough for a clear association), cached at module level so the test
files that request it share the same run."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformer_lens import HookedTransformer

from lens_bias.data.injection_specs import injection_spec
from lens_bias.localize.inject import InjectedEntity, InjectionConfig, inject

#: Steps of the shared real-model run (the experiment's default is 150; 30 already lifts the log-odds).
SMOLLM_STEPS = 30


@dataclass
class InjectedRun:
    """The base model's parameters as they were before injection, and the injection's outputs."""

    before: dict[str, torch.Tensor]
    model: HookedTransformer
    entity: InjectedEntity


_RUNS: dict[int, InjectedRun] = {}


def injected_smollm(smollm: HookedTransformer) -> InjectedRun:
    """Reckless-driving injection into the session's real model (computed once per process)."""
    if id(smollm) not in _RUNS:
        before = {name: p.detach().clone() for name, p in smollm.named_parameters()}
        spec = injection_spec("reckless_driving")
        model, entity = inject(smollm, spec, InjectionConfig(steps=SMOLLM_STEPS, seed=0), progress=False)
        _RUNS[id(smollm)] = InjectedRun(before, model, entity)
    return _RUNS[id(smollm)]
