"""The error policy of every experiment's command line.

Error policy: bad input (:class:`lens_bias.errors.InputError` and its subclasses, or a file that does not
exist) ends in one ``error: ...`` line on stderr and exit status 2; argparse's own usage errors exit 2 too. A
``--replot`` of a saved result whose report fails to read it (a part missing, an unknown name) is bad input too.
A full disk, an exceeded quota or a read-only file system (``OSError`` ENOSPC, EDQUOT, EROFS) is one line and exit
status 2 too; every file is written atomically (:mod:`lens_bias.files`), so such a failure leaves the previous
result, or none, never a half-written one. SIGTERM ends a run as Ctrl-C does (its lock released), with exit
status 143.
Any other exception is a bug and keeps its traceback. ``LENS_BIAS_DEBUG=1`` shows the traceback of input
errors as well.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from lens_bias.errors import InputError

#: Errors that are the user's: printed as one line, exit status 2.
USER_ERRORS = (InputError, FileNotFoundError)
#: ``OSError`` numbers of storage that cannot take a write (full disk, quota, read-only file system): the machine's
#: state, not a bug, so one line and exit status 2 as well.
STORAGE_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


def run(main: Callable[[], Any]) -> None:
    """Call ``main()`` under the error policy of the module docstring; SIGTERM ends it like Ctrl-C does (the
    run's lock is released, staging files are removed), with exit status 143."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        main()
    except (*USER_ERRORS, OSError) as error:
        if os.environ.get("LENS_BIAS_DEBUG") == "1":
            raise
        if isinstance(error, USER_ERRORS):
            message = str(error)
        elif error.errno in STORAGE_ERRORS:
            message = f"cannot write {error.filename}: {error.strerror}."
        else:
            raise
        print(f"error: {message}\n(set LENS_BIAS_DEBUG=1 for the traceback)", file=sys.stderr)
        sys.exit(2)


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)
