"""In-dialog requests from the far end of a call: INFO (DTMF), re-INVITE (hold, new address or
codec) and NOTIFY (the outcome of a transfer we asked for).

The SIP dialog layer (``engine.sip.invite``) calls this through its ``SessionHandler`` protocol;
this object turns those requests into effects on the call's media, keypad and trace.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from core.call import CallTrace, DtmfEvent
from engine.media.session import MediaSession
from engine.sip.dtmf_info import DtmfInfoError, parse_dtmf_info
from engine.sip.sdp import SdpNegotiationError, SdpParseError, SessionDescription, negotiate_answer

log = logging.getLogger("ivr.call")

INFO_DTMF_TYPES = ("application/dtmf-relay", "application/dtmf")


def sipfrag_status(body: bytes) -> int | None:
    """The status code of a message/sipfrag status line (``SIP/2.0 200 OK``), else None."""
    parts = body.lstrip().split(b"\n", 1)[0].split()
    if len(parts) >= 2 and parts[0] == b"SIP/2.0" and parts[1].isdigit():
        return int(parts[1])
    return None


class InDialogHandler:
    def __init__(self, *, call_id: str, media: MediaSession, trace: CallTrace,
                 on_dtmf: Callable[[DtmfEvent], None], now: Callable[[], float],
                 local_ip: str, sources: Callable[[str], frozenset[str] | None] | None = None,
                 ) -> None:
        self.call_id = call_id
        self.media = media
        self.trace = trace
        self._on_dtmf = on_dtmf
        self._now = now
        self.local_ip = local_ip  # what our SDP advertises (answers to re-INVITEs too)
        self._sources = sources  # where RTP may come from, given the new SDP's address
        self.local_sdp_version = 1
        self._refer_final: asyncio.Future[int] | None = None

    # -- SessionHandler ------------------------------------------------------------------------

    def on_info(self, content_type: str, body: bytes) -> int:
        """SIP INFO DTMF (application/dtmf-relay, application/dtmf); 415 for anything else."""
        if content_type not in INFO_DTMF_TYPES:
            return 415
        try:
            digit, duration_ms = parse_dtmf_info(content_type, body)
        except DtmfInfoError as e:
            log.debug("call %s: bad INFO DTMF body: %s", self.call_id, e)
            return 400
        self.media.stats.dtmf_rx += 1
        self._on_dtmf(DtmfEvent(digit, "info", duration_ms, self._now()))
        return 200

    def on_reinvite(self, offer: bytes) -> bytes:
        """Hold/unhold or a new address/codec: answer with our SDP (RFC 3264 §8)."""
        try:
            sdp = SessionDescription.parse(offer)
            self.local_sdp_version += 1
            answer, chosen = negotiate_answer(
                sdp, supported=(self.media.codec,), local_ip=self.local_ip,
                local_port=self.media.local_port, session_id=self.local_sdp_version)
        except (SdpParseError, SdpNegotiationError) as e:
            raise ValueError(str(e)) from e
        allowed = self._sources(chosen.remote_ip) if self._sources is not None else None
        self.media.update_remote((chosen.remote_ip, chosen.remote_port), chosen.codec, allowed)
        self.media.on_hold = chosen.direction in ("recvonly", "inactive")
        self.trace.add("hold" if self.media.on_hold else "unhold", direction=chosen.direction)
        return answer.serialize()

    def on_notify(self, request: Any) -> None:
        event = request.headers.get("Event") or ""
        self.trace.add("notify", event=event, body=request.body[:80].decode(errors="replace"))
        status = sipfrag_status(request.body) if event.lower().startswith("refer") else None
        fut = self._refer_final
        if status is not None and status >= 200 and fut is not None and not fut.done():
            fut.set_result(status)

    # -- for the transfer ----------------------------------------------------------------------

    def expect_refer_outcome(self) -> asyncio.Future[int]:
        """A future the next final NOTIFY of our REFER resolves with its sipfrag status."""
        self._refer_final = asyncio.get_running_loop().create_future()
        return self._refer_final
