"""Network addresses a run connects to, checked before the work: ``ray.init`` retries an address where no Ray head
listens forever (and ignores SIGTERM meanwhile), so the address is tried first, with a timeout.

This module imports nothing heavy: the experiments check ``--address`` before they load a model.
"""

from __future__ import annotations

import os
import socket
import time

from lens_bias.errors import InputError

#: Seconds :func:`check_ray_address` waits for a Ray head to accept a connection, unless ``$LENS_BIAS_RAY_TIMEOUT``
#: says otherwise.
RAY_TIMEOUT_S = 60.0
RAY_TIMEOUT_ENV = "LENS_BIAS_RAY_TIMEOUT"


def check_ray_address(address: str, timeout_s: float | None = None) -> None:
    """Wait until something accepts a TCP connection at ``address`` (``host:port`` or ``ray://host:port``; ``auto``
    is Ray's own lookup and not checked), trying every half second for ``timeout_s`` seconds (None:
    ``$LENS_BIAS_RAY_TIMEOUT``, else :data:`RAY_TIMEOUT_S`). :class:`InputError` when the address is malformed or
    nothing answers in time: ``ray.init`` itself would retry forever."""
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise InputError(f"--address {address}: give HOST:PORT (e.g. 10.0.0.5:6379), ray://HOST:PORT or auto.")
    if timeout_s is None:
        try:
            timeout_s = float(os.environ.get(RAY_TIMEOUT_ENV, RAY_TIMEOUT_S))
        except ValueError:
            raise InputError(f"${RAY_TIMEOUT_ENV} must be a number of seconds.") from None
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=max(0.1, min(5.0, timeout_s))).close()
            return
        except OSError as error:
            if time.monotonic() + 0.5 > deadline:
                reason = error.strerror or error
                raise InputError(
                    f"--address {address}: no Ray head answers there within {timeout_s:g} s ({reason}). Start one "
                    f"on that host (ray start --head --port {port}), check the address, or leave out --address for "
                    f"a local Ray instance; ${RAY_TIMEOUT_ENV} sets the wait."
                ) from None
        time.sleep(0.5)
