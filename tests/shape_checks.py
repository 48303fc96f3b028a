"""Run-time check of jaxtyping shape annotations only, as the type checker of jaxtyping's pytest plugin.

``pytest --jaxtyping-packages=lens_bias,shape_checks.check_shapes`` decorates every function and dataclass of
lens_bias with ``jaxtyped(typechecker=check_shapes)``: each argument and return value annotated with a
jaxtyping array type (``Float[Tensor, "batch pos"]``, also inside ``X | None``, ``list[...]``, ``tuple[...]``,
``dict[str, ...]``) must match it, with dimension names bound consistently across one call. Other
annotations are not checked: bad input must still reach the library's own ``ValueError`` (the tests of
those messages stay meaningful), and ``int`` where ``float`` is annotated stays valid (PEP 484).
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from jaxtyping import AbstractArray

_UNIONS = (typing.Union, types.UnionType)
_SEQUENCES = (list, tuple, Sequence, typing.Sequence)


def _is_array_type(hint: Any) -> bool:
    return inspect.isclass(hint) and issubclass(hint, AbstractArray)


def _mentions_array(hint: Any) -> bool:
    return _is_array_type(hint) or any(_mentions_array(arg) for arg in typing.get_args(hint))


def _conforms(value: Any, hint: Any) -> bool:
    """Whether ``value`` matches the array types in ``hint``; parts of ``hint`` without an array type pass."""
    if _is_array_type(hint):
        return isinstance(value, hint)
    if not _mentions_array(hint):
        origin = typing.get_origin(hint) or hint
        return value is None if hint is type(None) else not inspect.isclass(origin) or isinstance(value, origin)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in _UNIONS:
        return any(_conforms(value, arg) for arg in args)
    if inspect.isclass(origin) and issubclass(origin, Mapping) and isinstance(value, Mapping):
        return all(_conforms(item, args[-1]) for item in value.values())
    if origin is tuple and isinstance(value, tuple) and not (len(args) == 2 and args[1] is Ellipsis):
        return len(value) == len(args) and all(_conforms(item, arg) for item, arg in zip(value, args))
    if origin in _SEQUENCES and isinstance(value, (list, tuple)):
        return all(_conforms(item, args[0]) for item in value)
    return True


def check_shapes(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` wrapped so that a call raises ``TypeError`` when an argument or the return value does not match
    its array annotation (jaxtyping turns that into a ``TypeCheckError`` naming the parameter)."""
    signature = inspect.signature(fn)
    params = {name: p.annotation for name, p in signature.parameters.items() if _mentions_array(p.annotation)}
    returns = signature.return_annotation if _mentions_array(signature.return_annotation) else None
    if not params and returns is None:
        return fn

    @functools.wraps(fn)
    def checked(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        for name, hint in params.items():
            if name in bound.arguments and not _conforms(bound.arguments[name], hint):
                raise TypeError(f"{name} does not match {hint}")
        out = fn(*args, **kwargs)
        if returns is not None and not _conforms(out, returns):
            raise TypeError(f"the return value does not match {returns}")
        return out

    return checked
