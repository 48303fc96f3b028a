"""The one exception type for bad input: a user's mistake, with a message that says what to do.

Policy (the same in the library and in every experiment): a public entry point that is given input it
cannot use (an unknown model or contrast, a layer out of range, a missing data file, a saved file of the
wrong kind, sizes out of range) raises :class:`InputError` (or a subclass) *before* any expensive work,
with a message that names the parameter and says how to fix it. Experiments print such an error as one
``error: ...`` line and exit with status 2. Every other exception is a bug of the toolkit (or of the
environment) and keeps its traceback.

``InputError`` subclasses ``ValueError``, so code written against ``ValueError`` keeps working.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input from the caller; the message says what to change."""
