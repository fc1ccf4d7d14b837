"""The test suite's port pool (tests/netutil.py): ports handed to peers never repeat within a
worker until its slice wraps, the two xdist workers never share one, and a session-long peer's
range is skipped after the wrap."""

from __future__ import annotations

import socket

import pytest

from tests import netutil
from tests.netutil import _PortPool


def _pool(monkeypatch: pytest.MonkeyPatch, worker: str, count: str = "2") -> _PortPool:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", count)
    return _PortPool()


def test_workers_have_disjoint_slices_below_the_ephemeral_range(
        monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = _pool(monkeypatch, "gw0"), _pool(monkeypatch, "gw1")
    assert a.slice.stop <= b.slice.start
    assert b.slice.stop <= max(netutil._ephemeral_low(), netutil._FIRST_PORT + 2_000)
    assert a.slice.start >= netutil._FIRST_PORT


def test_ports_do_not_repeat_until_the_slice_wraps(monkeypatch: pytest.MonkeyPatch) -> None:
    pool = _pool(monkeypatch, "gw0")
    taken: list[range] = []
    for size in [1, 4, 200, 2, 1, 40] * 5:
        base = pool.take(size, lambda r: True, even=size > 1)
        taken.append(range(base, base + size))
    ports = [p for r in taken for p in r]
    assert len(ports) == len(set(ports))
    assert all(r.start % 2 == 0 for r in taken if len(r) > 1)
    assert all(r.start in pool.slice and r.stop <= pool.slice.stop for r in taken)


def test_a_kept_range_is_skipped_after_the_wrap(monkeypatch: pytest.MonkeyPatch) -> None:
    pool = _pool(monkeypatch, "gw0")
    pool.slice = range(20_000, 20_100)
    pool.cursor = 20_000
    kept = pool.take(40, lambda r: True, keep=True)
    for _ in range(30):  # three times round the slice
        base = pool.take(10, lambda r: True)
        assert not (base < kept + 40 and kept < base + 10), (base, kept)


def test_a_port_someone_holds_is_not_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    pool = _pool(monkeypatch, "gw0")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as held:
        held.bind(("127.0.0.1", pool.cursor))
        busy = held.getsockname()[1]
        monkeypatch.setattr(netutil, "_POOL", pool)
        got = netutil.free_port()
        assert got != busy
        assert got in pool.slice


def test_a_full_slice_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    pool = _pool(monkeypatch, "gw0")
    with pytest.raises(RuntimeError, match="no 4 free ports"):
        pool.take(4, lambda r: False)
