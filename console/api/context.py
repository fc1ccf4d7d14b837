"""What the console's handlers share: the services container, options, typed app keys and the
session cookies. (Kept apart from ``app.py`` so handler modules and the app factory do not
import each other.)"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from console.api.routing import ApiRequest
from console.audit import AuditLog
from console.identity import Identity
from console.live import EventHub
from console.services.campaigns import CampaignOps
from console.services.compliance import ListOps, WordOps
from console.services.dashboard import DashboardOps
from console.services.flows import FlowOps
from console.services.inspection import InspectionOps
from console.services.simulator import SimulatorSessions
from console.services.testcalls import TestCalls
from console.services.users import UserOps
from console.services.voiceprints import VoiceprintOps
from core.clock import Clock, SystemClock
from engine.cdr import CallRecords

SESSION_COOKIE = "ivr_session"
CSRF_COOKIE = "ivr_csrf"
CSRF_HEADER = "X-CSRF-Token"
STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
VERSION = "0.1.0"
PASSWORD_CHANGE_OK = frozenset({"me", "logout", "change_password", "openapi", "health",
                                "login"})


@dataclass
class ConsoleOptions:
    cookie_secure: bool = True
    max_body_bytes: int = 2 * 1024 * 1024  # JSON bodies: a large flow is ~200 kB
    max_upload_bytes: int = 50 * 1024 * 1024  # CSV imports
    login_attempts: int = 10  # failures per username or address ...
    login_window_s: float = 300.0  # ... within this window, then 429
    events_heartbeat_s: float = 15.0
    events_write_timeout_s: float = 10.0
    events_coalesce_s: float = 0.05  # live views batch what arrives within 50 ms
    recordings_dir: Path = Path("var/recordings")


@dataclass
class ConsoleServices:
    """Everything the handlers call; built by ``app/console_setup.py`` (or a test)."""

    identity: Identity
    audit: AuditLog
    users: UserOps
    calls: CallRecords
    flows: FlowOps
    simulator: SimulatorSessions
    testcalls: TestCalls
    words: WordOps | None = None
    lists: ListOps | None = None
    voiceprints: VoiceprintOps | None = None
    inspection: InspectionOps | None = None
    campaigns: CampaignOps | None = None
    dashboard: DashboardOps | None = None
    hub: EventHub | None = None
    flow_schema: dict[str, Any] = field(default_factory=dict)
    clock: Clock = field(default_factory=SystemClock)
    options: ConsoleOptions = field(default_factory=ConsoleOptions)


SERVICES = web.AppKey("services", ConsoleServices)
THROTTLE = web.AppKey("login_throttle", dict)


def services(request: web.Request | ApiRequest) -> ConsoleServices:
    req = request.request if isinstance(request, ApiRequest) else request
    return req.app[SERVICES]


def client_ip(request: web.Request) -> str:
    return request.remote or ""


def set_session_cookies(response: web.StreamResponse, token: str, csrf: str, max_age: int,
                        secure: bool) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=max_age, path="/", httponly=True,
                        secure=secure, samesite="Strict")
    response.set_cookie(CSRF_COOKIE, csrf, max_age=max_age, path="/", httponly=False,
                        secure=secure, samesite="Strict")


def clear_session_cookies(response: web.StreamResponse) -> None:
    response.del_cookie(SESSION_COOKIE, path="/")
    response.del_cookie(CSRF_COOKIE, path="/")


