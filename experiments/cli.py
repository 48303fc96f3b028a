"""The command-line entry of every experiment module: bad input ends in one clear line, not a traceback."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Callable

#: Errors whose message says what to do (lens_bias raises these for bad input: unknown model, missing
#: data, a layer out of range, wrong shapes, an intervention that cannot apply ...).
USER_ERRORS = (ValueError, TypeError, FileNotFoundError)


def run(main: Callable[[], Any]) -> None:
    """Call ``main()``; on a :data:`USER_ERRORS` error print ``error: <message>`` to stderr and exit with
    status 2. ``LENS_BIAS_DEBUG=1`` re-raises instead, with the full traceback."""
    try:
        main()
    except USER_ERRORS as error:
        if os.environ.get("LENS_BIAS_DEBUG") == "1":
            raise
        print(f"error: {error}\n(set LENS_BIAS_DEBUG=1 for the traceback)", file=sys.stderr)
        sys.exit(2)


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None, quick: dict[str, Any]) -> argparse.Namespace:
    """Parse ``argv``; with ``--quick``, ``quick`` replaces the defaults (arguments given explicitly still win)."""
    args = parser.parse_args(argv)
    if args.quick:
        parser.set_defaults(**quick)
        args = parser.parse_args(argv)
    return args
