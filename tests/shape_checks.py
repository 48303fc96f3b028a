"""Run-time check of jaxtyping shape annotations only, as the type checker of jaxtyping's pytest plugin.

``pytest --jaxtyping-packages=lens_bias,shape_checks.check_shapes`` decorates every function and dataclass of
lens_bias with ``jaxtyped(typechecker=check_shapes)``: each argument and return value annotated with a
jaxtyping array type (``Float[Tensor, "batch pos"]``, also inside ``X | None``, ``list[...]``, ``tuple[...]``,
``dict[str, ...]``) must match it, with dimension names bound consistently across one call. Other
annotations are not checked: bad input must still reach the library's own ``ValueError`` (the tests of
those messages stay meaningful), and ``int`` where ``float`` is annotated stays valid (PEP 484).

:func:`skip_functions_without_arrays` (installed by ``conftest.py``) leaves the functions with no array annotation
undecorated: jaxtyping's wrapper binds the arguments of every call, checked or not, and the hot small functions
(a bootstrap statistic runs 1,000 times per interval) spent most of the fast tests' time in it.
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


def _needs_checks(fn: Any) -> bool:
    """Whether a function's resolved annotations mention an array type; True (check it) when they cannot be
    resolved when it is defined (a forward reference, a name imported only for type checkers)."""
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # NameError, or anything else typing raises on an unresolvable annotation
        return True
    return any(_mentions_array(hint) for hint in hints.values())


def skip_functions_without_arrays() -> None:
    """Make ``jaxtyping.jaxtyped``, as the import hook of jaxtyping's pytest plugin calls it, return a function
    whose annotations mention no array type unchanged; classes and the functions with arrays are decorated as
    before. Install before lens_bias is imported (the hook looks ``jaxtyping.jaxtyped`` up as each module runs)."""
    import jaxtyping

    decorate = jaxtyping.jaxtyped
    if getattr(decorate, "skips_functions_without_arrays", False):
        return

    def jaxtyped(fn: Any = None, **options: Any) -> Any:
        if fn is None:  # jaxtyped(typechecker=...), as the hook writes it, then applied to the function
            return lambda target: jaxtyped(target, **options)
        if inspect.isfunction(fn) and not _needs_checks(fn):
            return fn
        return decorate(fn, **options)

    jaxtyped.skips_functions_without_arrays = True  # type: ignore[attr-defined]
    jaxtyping.jaxtyped = jaxtyped  # type: ignore[assignment]


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
