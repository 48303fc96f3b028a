"""Network addresses a run connects to, checked before the work: ``ray.init`` retries an address where no Ray head
listens forever (and ignores SIGTERM meanwhile), and hangs on one where something else listens, so the address is
tried first, with a timeout: something must accept a connection there and answer the HTTP/2 handshake that every
Ray head (its GCS, or its Ray Client server for ``ray://``: both gRPC) answers.

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
    ``$LENS_BIAS_RAY_TIMEOUT``, else :data:`RAY_TIMEOUT_S`), then check that it speaks gRPC (:func:`_speaks_grpc`).
    :class:`InputError` when the address is malformed, nothing answers in time, or what answers is not gRPC:
    ``ray.init`` itself would retry forever, or hang."""
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
            connection = socket.create_connection((host.strip("[]"), int(port)), timeout=max(0.1, min(5.0, timeout_s)))
        except OSError as error:
            if time.monotonic() + 0.5 > deadline:
                reason = error.strerror or error
                raise InputError(
                    f"--address {address}: no Ray head answers there within {timeout_s:g} s ({reason}). Start one "
                    f"on that host (ray start --head --port {port}), check the address, or leave out --address for "
                    f"a local Ray instance; ${RAY_TIMEOUT_ENV} sets the wait."
                ) from None
            time.sleep(0.5)
            continue
        with connection:
            if _speaks_grpc(connection, timeout_s=max(0.5, min(5.0, deadline - time.monotonic()))):
                return
        raise InputError(
            f"--address {address}: something listens there but it is not a Ray head (it did not answer gRPC's "
            f"HTTP/2 handshake). Check the port: a head's GCS port is the --port of `ray start --head` (default "
            f"6379), a Ray Client server's is 10001 (ray://HOST:10001)."
        )


#: HTTP/2's client connection preface followed by an empty SETTINGS frame (RFC 9113, 3.4 and 6.5).
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def _speaks_grpc(connection: socket.socket, timeout_s: float) -> bool:
    """Whether the peer of ``connection`` answers HTTP/2's client preface with a SETTINGS frame (frame type 4 in
    the fourth byte of its 9-byte header) within ``timeout_s`` seconds, as every gRPC server does."""
    connection.settimeout(timeout_s)
    try:
        connection.sendall(_HTTP2_PREFACE)
        header = b""
        while len(header) < 9:
            chunk = connection.recv(9 - len(header))
            if not chunk:
                return False
            header += chunk
    except OSError:
        return False
    return header[3] == 4
