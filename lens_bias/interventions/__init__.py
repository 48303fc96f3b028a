"""Every intervention behind one protocol: steering additions and projections, subspace edits, head
scaling; applied through one hook context and saved in one format, through one registry.

The canonical import path of every intervention class and of :func:`save_intervention` /
:func:`load_intervention`. (Activation patches stay in :mod:`lens_bias.patching`, which runs them itself.)
"""

from lens_bias.forward.hooks import (
    ForwardContext,
    Hookable,
    HookFn,
    Intervention,
    ResidHook,
    applied,
    check_hook_names,
    check_interventions,
    describe_all,
    hooks_added,
    residual_hook_name,
    run_chunks,
)
from lens_bias.interventions.heads import HEAD_SCALING_RESULT, Head, HeadScaling
from lens_bias.interventions.saved import (
    INTERVENTION_KINDS,
    SavableIntervention,
    load_intervention,
    register,
    save_intervention,
)
from lens_bias.interventions.steer import (
    ADD_VECTOR_RESULT,
    PROJECT_OUT_RESULT,
    SUBSPACE_EDIT_RESULT,
    AddVector,
    ProjectOut,
    SubspaceEdit,
)

__all__ = [
    "ADD_VECTOR_RESULT",
    "HEAD_SCALING_RESULT",
    "INTERVENTION_KINDS",
    "PROJECT_OUT_RESULT",
    "SUBSPACE_EDIT_RESULT",
    "AddVector",
    "ForwardContext",
    "Head",
    "HeadScaling",
    "HookFn",
    "Hookable",
    "Intervention",
    "ProjectOut",
    "ResidHook",
    "SavableIntervention",
    "SubspaceEdit",
    "applied",
    "check_hook_names",
    "check_interventions",
    "describe_all",
    "hooks_added",
    "load_intervention",
    "register",
    "residual_hook_name",
    "run_chunks",
    "save_intervention",
]
