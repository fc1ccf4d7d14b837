"""Shared fixtures: an injected fake clock and real services (redis-server, PostgreSQL) on
loopback."""

from __future__ import annotations

import asyncio
import faulthandler
import fcntl
import inspect
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from _pytest.nodes import Node

from core.clock import FakeClock
from tests.netutil import free_port


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real redis-server on a free loopback port, one per test worker, no persistence."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (scripts/bootstrap.sh installs it)")
    port = free_port(socket.SOCK_STREAM, keep=True)  # lives the session
    workdir = tempfile.mkdtemp(prefix="ivr-redis-")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", workdir],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("redis-server did not start")
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(5)
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def asterisk_server() -> Iterator[Any]:
    """A real Asterisk (built once per machine by scripts/asterisk.sh) on free loopback ports,
    one per test worker; see tests/asterisk.py."""
    from tests.asterisk import AsteriskUnavailable, start_asterisk

    try:
        ast = start_asterisk()
    except AsteriskUnavailable as e:
        pytest.fail(f"Asterisk is needed for this test and could not start: {e}")
    yield ast
    ast.stop()
    shutil.rmtree(ast.work, ignore_errors=True)


@pytest.fixture
def asterisk(asterisk_server: Any) -> Any:
    """The worker's Asterisk, running: a test that stops or kills it and fails before its
    restart must not leave the next tests a dead one (their failures would hide the cause)."""
    from tests.asterisk import AsteriskUnavailable

    if asterisk_server.proc is None or asterisk_server.proc.poll() is not None:
        try:
            asterisk_server.start()
        except AsteriskUnavailable as e:
            pytest.fail(f"Asterisk could not be started again: {e}")
    return asterisk_server


def _pg_bin(name: str) -> str:
    for candidate in (shutil.which(name), *sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
                                                   reverse=True)):
        if candidate and Path(candidate).exists():
            return str(candidate)
    pytest.fail(f"PostgreSQL's {name} is not installed (scripts/apt-packages.txt: postgresql)")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server in a scratch cluster on a free loopback port, one per worker.

    initdb refuses to run as root, so as root (CI) the cluster belongs to the ``postgres`` user
    the Debian package creates."""
    workdir = Path(tempfile.mkdtemp(prefix="ivr-pg-"))
    data = workdir / "data"
    as_user: list[str] = []
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(workdir, "postgres")
        workdir.chmod(0o700)
    port = free_port(socket.SOCK_STREAM, keep=True)  # lives the session
    subprocess.run([*as_user, _pg_bin("initdb"), "-D", str(data), "-U", "ivr", "-A", "trust",
                    "--no-sync", "-E", "UTF8", "--locale", "C.UTF-8"],
                   check=True, capture_output=True)
    opts = f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run([*as_user, _pg_bin("pg_ctl"), "-D", str(data), "-o", opts, "-l",
                    str(workdir / "log"), "-w", "start"], check=True, capture_output=True)
    subprocess.run([*as_user, _pg_bin("createdb"),
                    "-h", "127.0.0.1", "-p", str(port), "-U", "ivr", "ivr"],
                   check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://ivr@127.0.0.1:{port}/ivr"
    finally:
        subprocess.run([*as_user, _pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       check=False, capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, empty database for one test, on SQLite and on a real PostgreSQL: stores that
    queue durable work (records, the SMS outbox, flows) must behave the same on both."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/test.sqlite"
        return
    with fresh_pg_database(request.getfixturevalue("postgres_url")) as url:
        yield url


@contextmanager
def fresh_pg_database(server: str) -> Iterator[str]:
    """A new, empty database on the PostgreSQL ``server`` (its URL), dropped afterwards."""
    from sqlalchemy import create_engine, text

    from storage.db import open_database

    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    url = server.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        open_database(url, create=False).engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


CPU_LOCK = Path(tempfile.gettempdir()) / f"ivr-tests-exclusive-cpu-{os.getuid()}.lock"


@pytest.fixture(autouse=True)
def _exclusive_cpu(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tests marked ``exclusive_cpu`` take one machine-wide lock, so two never overlap across
    xdist workers. Two kinds are marked: those that load the box on purpose (an AMI event flood
    keeps Asterisk busy on both cores) and those whose real peer must run in real time (a
    softphone's audio thread, starved for a second, sends its backlog in a burst: the engine
    then rightly drops it as too late, and a recording or in-band digit test fails for a reason
    that is not the engine's). The engine's own real-time behaviour under load is measured by
    the benchmarks, not by luck of scheduling here."""
    if request.node.get_closest_marker("exclusive_cpu") is None:
        yield
        return
    with CPU_LOCK.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


if os.environ.get("IVR_STALL_DUMP"):  # a diagnosis aid, off by default (no cost then)
    @pytest.fixture(autouse=True)
    async def _event_loop_stall_dump(request: pytest.FixtureRequest) -> Any:
        """Diagnosis aid, off unless IVR_STALL_DUMP names a folder: while an async test runs, a C
        watchdog thread (faulthandler, which needs no GIL) dumps every thread's stack whenever the
        event loop has not re-armed it for 0.4 s, so a stall shows who held the interpreter."""
        folder = os.environ["IVR_STALL_DUMP"]
        if not asyncio.iscoroutinefunction(request.function):
            yield
            return
        name = request.node.nodeid.replace("/", "_").replace(":", "_")[:180]
        path = Path(folder) / f"{name}.{os.getpid()}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        running = True
        with path.open("w") as f:
            def arm() -> None:
                if running:
                    faulthandler.dump_traceback_later(0.4, file=f)
                    loop.call_later(0.1, arm)
            arm()
            try:
                yield
            finally:
                running = False
                faulthandler.cancel_dump_traceback_later()
        if path.stat().st_size == 0:
            path.unlink()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Fail fast when ``--dist loadgroup`` stops grouping. pytest-xdist marks a grouped test by
    a ``@group`` suffix on its node id; pytest 9.2 moved node ids where xdist 3.8 does not write,
    and the groups were silently spread over both workers: real-time SIP tests then ran beside
    each other and failed by turns (see requirements/dev.txt)."""
    if not getattr(config.option, "loadgroup", False):
        return
    for item in items:
        if item.get_closest_marker("xdist_group") is not None and "@" not in item.nodeid:
            why = (f"--dist loadgroup is not grouping ({item.nodeid} has no @group suffix): "
                   "this pytest and pytest-xdist do not work together; see requirements/dev.txt")
            print(why, file=sys.stderr)  # a worker's error reaches the controller garbled
            raise pytest.UsageError(why)


def pytest_configure(config: pytest.Config) -> None:
    """The same check, readable, before the workers start (pytest 9.2's node ids)."""
    if config.getoption("dist", "no") != "loadgroup" or hasattr(config, "workerinput"):
        return
    if "_nodeid" not in inspect.getsource(Node.nodeid.fget):  # type: ignore[attr-defined]
        raise pytest.UsageError(
            f"pytest {pytest.__version__} keeps node ids where pytest-xdist's --dist loadgroup "
            "does not write its @group suffix: groups would be spread over all workers; "
            "install what requirements/dev.txt pins")
