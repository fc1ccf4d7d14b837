"""The shared primitives: config precedence, the fake clock, the named-task helper."""

from __future__ import annotations

import asyncio
import logging

import pytest

from app.config import ConfigError, load_settings, parse_hostport
from core.clock import FakeClock
from core.tasks import TaskScope, spawn


def test_defaults_without_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = load_settings(environ={})
    assert s.sip.listen == "127.0.0.1:5080"
    assert s.storage.url.startswith("sqlite:")


def test_toml_then_env_override(tmp_path):
    cfg = tmp_path / "ivr.toml"
    cfg.write_text('[sip]\nlisten = "0.0.0.0:5070"\nmax_calls = 10\n[rtp]\nport_min = 30000\n')
    s = load_settings(cfg, environ={"IVR_SIP__MAX_CALLS": "20",
                                    "IVR_SIP__TRUSTED_PEERS": '["10.0.0.0/8"]'})
    assert s.sip.listen == "0.0.0.0:5070"
    assert s.sip.max_calls == 20
    assert s.sip.trusted_peers == ["10.0.0.0/8"]
    assert s.rtp.port_min == 30000


def test_bad_config_names_the_key(tmp_path):
    cfg = tmp_path / "ivr.toml"
    cfg.write_text('[sip]\nmax_calls = "many"\n')
    with pytest.raises(ConfigError, match=r"sip\.max_calls"):
        load_settings(cfg, environ={})
    cfg.write_text("[sip\n")
    with pytest.raises(ConfigError, match="ivr.toml"):
        load_settings(cfg, environ={})
    cfg.write_text("[nosuchsection]\nx = 1\n")
    with pytest.raises(ConfigError, match="nosuchsection"):
        load_settings(cfg, environ={})


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1.2.3.4:5", ("1.2.3.4", 5)), ("host", ("host", 5060)), ("[::1]:5080", ("::1", 5080))],
)
def test_parse_hostport(text, expected):
    assert parse_hostport(text) == expected


async def test_fake_clock_wakes_in_order():
    clock = FakeClock()
    woke: list[str] = []

    async def sleeper(name: str, s: float) -> None:
        await clock.sleep(s)
        woke.append(name)

    t1 = spawn(sleeper("late", 2.0), "late")
    t2 = spawn(sleeper("early", 1.0), "early")
    await asyncio.sleep(0)
    await clock.advance(1.5)
    assert woke == ["early"]
    await clock.advance(1.0)
    assert woke == ["early", "late"]
    await asyncio.gather(t1, t2)


async def test_spawn_logs_failures(caplog):
    async def boom() -> None:
        raise RuntimeError("kaput")

    with caplog.at_level(logging.ERROR, logger="ivr.tasks"):
        t = spawn(boom(), "boom-task")
        with pytest.raises(RuntimeError):
            await t
        await asyncio.sleep(0)
    assert "boom-task" in caplog.text


async def test_task_scope_cancels_on_close():
    scope = TaskScope("call-1")
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.sleep(3600)

    t = scope.spawn(forever(), "forever")
    await started.wait()
    await scope.close(grace_s=1.0)
    assert t.cancelled()
    with pytest.raises(RuntimeError):
        scope.spawn(forever(), "late")
