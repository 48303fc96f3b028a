"""A Ray address is tried, with a timeout, before ``ray.init`` (which retries one where nothing listens forever)."""

from __future__ import annotations

import socket
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


@pytest.mark.fault
def test_an_address_where_something_listens_passes_and_a_malformed_one_is_refused():
    with socket.create_server(("127.0.0.1", 0)) as server:
        check_ray_address(f"127.0.0.1:{server.getsockname()[1]}", timeout_s=1)
    check_ray_address("auto")  # Ray's own lookup
    with pytest.raises(InputError, match="give HOST:PORT"):
        check_ray_address("headnode", timeout_s=1)
