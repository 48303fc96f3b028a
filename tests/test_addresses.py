"""A Ray address is tried, with a timeout, before ``ray.init`` (which retries one where nothing listens forever)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from lens_bias.addresses import check_ray_address
from lens_bias.errors import InputError


@pytest.mark.fault
def test_an_address_where_nothing_listens_is_refused_after_the_timeout():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(InputError, match=rf"--address ray://127.0.0.1:{port}: no Ray head answers there within 1 s"):
        check_ray_address(f"ray://127.0.0.1:{port}", timeout_s=1)
    assert time.monotonic() - started < 5


def _serve_once(reply: bytes | None) -> tuple[socket.socket, threading.Thread]:
    """A listener on a free local port that accepts one connection, reads the client's preface and sends
    ``reply`` (None: says nothing until closed)."""
    server = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        connection, _ = server.accept()
        with connection:
            connection.recv(64)
            if reply is not None:
                connection.sendall(reply)
            time.sleep(2)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    return server, thread


# what a gRPC server (Ray's GCS, as measured on a `ray start --head`) sends first: a SETTINGS frame
SETTINGS_FRAME = bytes([0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 4, 0, 0x40, 0, 0])


@pytest.mark.fault
def test_an_address_that_answers_grpc_passes_and_a_malformed_one_is_refused():
    server, _ = _serve_once(SETTINGS_FRAME)
    with server:
        check_ray_address(f"127.0.0.1:{server.getsockname()[1]}", timeout_s=1)
    check_ray_address("auto")  # Ray's own lookup
    with pytest.raises(InputError, match="give HOST:PORT"):
        check_ray_address("headnode", timeout_s=1)


@pytest.mark.fault
@pytest.mark.parametrize("reply", [b"HTTP/1.1 400 Bad Request\r\n\r\n", None], ids=["http1", "silent"])
def test_an_address_where_something_else_listens_is_refused_not_hung(reply):
    server, _ = _serve_once(reply)
    started = time.monotonic()
    with server, pytest.raises(InputError, match="something listens there but it is not a Ray head"):
        check_ray_address(f"ray://127.0.0.1:{server.getsockname()[1]}", timeout_s=1)
    assert time.monotonic() - started < 5
