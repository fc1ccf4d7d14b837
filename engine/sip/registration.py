"""Keeping a trunk registered (RFC 3261 §10): register at start, refresh before expiry, retry
with backoff when the registrar refuses or does not answer, unregister on shutdown.

One binding per trunk for the process's lifetime (same Call-ID and From tag, growing CSeq,
§10.2.4). The expiry granted is read from our Contact's ``expires`` parameter or the
``Expires`` header of the 200 (§10.2.1.1: the registrar may shorten what we asked); refresh
happens at 80 % of it, at least 5 s before it runs out. All waiting goes through the injected
clock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from core.clock import Clock
from engine.sip.grammar import is_digits
from engine.sip.invite import CallFailed
from engine.sip.message import SipParseError, SipResponse, new_call_id, new_tag
from engine.sip.uac import RegistrationIds

if TYPE_CHECKING:
    from engine.sip.ua import Credentials, UserAgent

log = logging.getLogger("ivr.sip.register")

RETRY_MIN_S = 5.0
RETRY_MAX_S = 300.0
REFRESH_FRACTION = 0.8
REFRESH_MARGIN_S = 5.0


def granted_expiry(response: SipResponse, asked: int) -> int:
    """Seconds the registrar granted: our Contact's ``expires`` param, else Expires, else asked."""
    try:
        for contact in response.contact:
            value = contact.params.get("expires")
            if value is not None and is_digits(value):
                return int(value)
    except SipParseError:
        pass
    header = (response.headers.get("Expires") or "").strip()
    return int(header) if is_digits(header) else asked


def refresh_delay(expires_s: int) -> float:
    return max(1.0, min(expires_s * REFRESH_FRACTION, expires_s - REFRESH_MARGIN_S))


@dataclass
class Registration:
    name: str
    ua: UserAgent
    registrar: str
    aor_user: str
    creds: Credentials | None
    clock: Clock
    expires: int = 600
    state: Literal["idle", "registered", "failed", "unregistered"] = "idle"
    last_status: int | None = None
    registered_until: float | None = None
    successes: int = 0
    failures: int = 0
    ids: RegistrationIds | None = field(default=None, repr=False)

    async def _register_once(self, expires: int) -> SipResponse:
        resp = await self.ua.register(self.registrar, self.aor_user, self.creds, expires,
                                      binding=self.ids)
        return resp

    async def run(self) -> None:
        """Register and keep refreshing until cancelled."""
        retry = RETRY_MIN_S
        while True:
            try:
                if self.ids is None:  # first REGISTER chooses the binding's Call-ID and tag
                    self.ids = RegistrationIds(new_call_id(self.name), new_tag())
                resp = await self._register_once(self.expires)
            except (TimeoutError, CallFailed, OSError) as e:
                resp = None
                log.warning("trunk %s: REGISTER to %s failed: %s", self.name, self.registrar, e)
            if resp is not None and 200 <= resp.status < 300:
                granted = granted_expiry(resp, self.expires)
                self.state, self.last_status = "registered", resp.status
                self.successes += 1
                self.registered_until = self.clock.now() + granted
                retry = RETRY_MIN_S
                log.info("trunk %s registered at %s for %d s", self.name, self.registrar, granted)
                await self.clock.sleep(refresh_delay(granted))
                continue
            self.failures += 1
            self.state = "failed"
            self.last_status = resp.status if resp is not None else None
            if resp is not None:
                log.warning("trunk %s: registrar answered %d %s", self.name, resp.status,
                            resp.reason)
            await self.clock.sleep(retry)
            retry = min(retry * 2, RETRY_MAX_S)

    async def unregister(self) -> None:
        """Remove our binding (Expires: 0); best effort, on shutdown."""
        if self.state != "registered":
            return
        try:
            resp = await self._register_once(0)
            self.last_status = resp.status
        except (TimeoutError, CallFailed, OSError) as e:
            log.info("trunk %s: unregister failed: %s", self.name, e)
        self.state = "unregistered"
