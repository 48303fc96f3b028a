"""Every intervention behind one protocol: steering additions and projections, subspace edits, head
scaling, activation patches; applied through one hook context and saved in one format."""

from lens_bias.interventions.hooks import (
    ForwardContext,
    HookFn,
    Intervention,
    applied,
    check_hook_names,
    describe_all,
    hooks_added,
    run_chunks,
)

__all__ = [
    "ForwardContext",
    "HookFn",
    "Intervention",
    "applied",
    "check_hook_names",
    "describe_all",
    "hooks_added",
    "run_chunks",
]
