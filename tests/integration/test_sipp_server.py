"""The SIPp peer harness (tests/sipp.py): a SIPp that cannot start says so at once, with what
it printed, instead of leaving the test to time out waiting for an answer."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.netutil import free_port, free_port_block
from tests.sipp import SippServer

pytestmark = [pytest.mark.sipp, pytest.mark.xdist_group("sipp")]


async def test_started_sipp_holds_its_port(tmp_path: Path) -> None:
    port = free_port()
    async with SippServer("uas", local_port=port, workdir=tmp_path,
                          extra=["-m", "1", "-mp", str(free_port_block(4))]) as peer:
        assert peer.proc is not None and peer.proc.returncode is None
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s, pytest.raises(OSError):
            s.bind(("127.0.0.1", port))


async def test_sipp_that_cannot_bind_fails_with_its_message(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind(("127.0.0.1", port))
        with pytest.raises(RuntimeError, match=f"SIPp did not start on port {port}") as err:
            async with SippServer("uas", local_port=port, workdir=tmp_path,
                                  extra=["-m", "1", "-mp", str(free_port_block(4))]):
                pass
    assert "Unable to bind main socket" in str(err.value), err.value  # SIPp's own words
