"""The shipped deployment files are consistent with the code: every engine service in
docker-compose.yml configures the engine with keys its own loader accepts, the nodes Kamailio
dispatches to are the nodes compose defines, and Kamailio's template has every placeholder the
supervisor fills. ``docker compose config`` runs too where docker's compose plugin is installed
(not on these machines: docker cannot run here)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from app.config import load_settings

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_engine_service_environment_loads_with_the_engine_config() -> None:
    services = {k: v for k, v in compose()["services"].items() if k.startswith("engine")}
    assert len(services) == 2
    nodes = set()
    for name, svc in services.items():
        env = {k: str(v) for k, v in svc["environment"].items()}
        settings = load_settings(environ=env)  # raises ConfigError naming a wrong key
        nodes.add(settings.cluster.node_id)
        assert settings.storage.url.startswith("postgresql+psycopg://"), name
        assert settings.compliance.redis_url == "redis://redis:6379/0"
        ip = svc["networks"]["ivr"]["ipv4_address"]
        assert settings.sip.advertise_host == ip
    assert nodes == {"engine-a", "engine-b"}


def test_kamailio_dispatches_to_the_compose_nodes() -> None:
    svc = compose()["services"]
    ips = {svc[n]["networks"]["ivr"]["ipv4_address"] for n in ("engine-a", "engine-b")}
    listed = {line.split()[1].removeprefix("sip:").rsplit(":", 1)[0]
              for line in (ROOT / "deploy/kamailio/compose-dispatcher.list").read_text()
              .splitlines() if line.strip()}
    assert listed == ips


def test_the_kamailio_template_has_every_placeholder_the_supervisor_fills() -> None:
    text = (ROOT / "deploy/kamailio/kamailio.cfg").read_text()
    for placeholder in ("__LISTEN__", "__HOST__", "__TRUSTED_SUBNETS__", "__DISPATCHER_LIST__"):
        assert placeholder in text
    command = " ".join(compose()["services"]["kamailio"]["command"])
    for placeholder in ("__LISTEN__", "__HOST__", "__TRUSTED_SUBNETS__", "__DISPATCHER_LIST__"):
        assert placeholder in command  # compose fills them all too


def _compose_available() -> bool:
    return shutil.which("docker") is not None and subprocess.run(
        ["docker", "compose", "version"], check=False, capture_output=True).returncode == 0


@pytest.mark.skipif(not _compose_available(),
                    reason="docker's compose plugin is not installed here (docker cannot run "
                           "on this machine)")
def test_docker_compose_config_accepts_the_file() -> None:
    out = subprocess.run(["docker", "compose", "-f", str(ROOT / "docker-compose.yml"), "config",
                          "--quiet"], check=False, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
