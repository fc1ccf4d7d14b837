"""Shared fixtures: an injected fake clock and real services (redis-server, PostgreSQL) on
loopback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

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
    port = free_port(socket.SOCK_STREAM)
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
    port = free_port(socket.SOCK_STREAM)
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
