"""SIP dialogs (RFC 3261 §12), sans-IO.

A dialog holds what in-dialog requests need: Call-ID, tags, CSeq counters, the remote target
(refreshed by re-INVITE per §12.2.2) and the route set (Record-Route, reversed for the UAC).
It builds in-dialog requests and checks in-dialog requests it receives; sending is the UA's job.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field

from engine.sip.message import NameAddr, SipParseError, SipRequest, SipResponse, SipUri

TARGET_REFRESH_METHODS = frozenset({"INVITE", "UPDATE"})


class DialogState(enum.Enum):
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


class DialogError(ValueError):
    """An in-dialog request that must be refused; ``status`` is the response to send."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(slots=True)
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: str  # name-addr text of our side, without tag
    remote_uri: str  # name-addr text of the peer, without tag
    remote_target: SipUri
    route_set: list[str] = field(default_factory=list)  # Route header values, in send order
    local_seq: int = field(default_factory=lambda: random.randint(1, 2**20))
    remote_seq: int | None = None
    is_uac: bool = False
    state: DialogState = DialogState.CONFIRMED

    @property
    def id(self) -> tuple[str, str, str]:
        return (self.call_id, self.local_tag, self.remote_tag)

    # -- creation ------------------------------------------------------------------------------

    @classmethod
    def as_uas(cls, invite: SipRequest, local_tag: str) -> Dialog:
        """§12.1.1: the dialog a UAS creates when it answers ``invite``."""
        frm, to = invite.from_, invite.to
        contacts = invite.contact
        if not contacts:
            raise DialogError(400, "Bad Request - Missing Contact")
        return cls(
            call_id=invite.call_id,
            local_tag=local_tag,
            remote_tag=frm.tag or "",
            local_uri=_without_tag(to),
            remote_uri=_without_tag(frm),
            remote_target=contacts[0].uri,
            route_set=list(invite.headers.get_all("Record-Route")),
            remote_seq=invite.cseq[0],
            is_uac=False,
        )

    @classmethod
    def as_uac(cls, invite: SipRequest, response: SipResponse) -> Dialog:
        """§12.1.2: the dialog a UAC creates from a 2xx (or 1xx with a To tag)."""
        contacts = response.contact
        target = contacts[0].uri if contacts else invite.uri
        return cls(
            call_id=invite.call_id,
            local_tag=invite.from_.tag or "",
            remote_tag=response.to.tag or "",
            local_uri=_without_tag(invite.from_),
            remote_uri=_without_tag(response.to),
            remote_target=target,
            route_set=list(reversed(response.headers.get_all("Record-Route"))),
            local_seq=invite.cseq[0],
            is_uac=True,
            state=DialogState.CONFIRMED if response.status >= 200 else DialogState.EARLY,
        )

    # -- requests ------------------------------------------------------------------------------

    def next_cseq(self) -> int:
        self.local_seq += 1
        return self.local_seq

    def create_request(self, method: str, *, via: str, contact: str | None = None,
                       cseq: int | None = None) -> SipRequest:
        """§12.2.1.1: an in-dialog request. ACK reuses the INVITE's CSeq (pass ``cseq``)."""
        seq = cseq if cseq is not None else self.next_cseq()
        request_uri = self.remote_target
        routes = self.route_set
        if routes and not _is_loose(routes[0]):
            # Strict router (RFC 2543): its URI becomes the Request-URI, the target goes last.
            request_uri = NameAddr.parse(routes[0]).uri
            routes = [*routes[1:], f"<{self.remote_target}>"]
        req = SipRequest(method, request_uri)
        h = req.headers
        h.add("Via", via)
        h.add("Max-Forwards", "70")
        for r in routes:
            h.add("Route", r)
        h.add("From", f"{self.local_uri};tag={self.local_tag}")
        h.add("To", f"{self.remote_uri};tag={self.remote_tag}")
        h.add("Call-ID", self.call_id)
        h.add("CSeq", f"{seq} {method}")
        if contact is not None:
            h.add("Contact", contact)
        return req

    def receive_request(self, request: SipRequest) -> None:
        """§12.2.2: check CSeq order and refresh the remote target. Raises DialogError."""
        seq = request.cseq[0]
        if request.method not in ("ACK", "CANCEL"):
            if self.remote_seq is not None and seq < self.remote_seq:
                raise DialogError(500, "Server Internal Error - CSeq out of order")
            if self.remote_seq is None or seq > self.remote_seq:
                self.remote_seq = seq
        if request.method in TARGET_REFRESH_METHODS:
            try:
                contacts = request.contact
            except SipParseError:
                contacts = []
            if contacts:
                self.remote_target = contacts[0].uri

    def next_hop_uri(self) -> SipUri:
        """Where an in-dialog request goes first: the top route, else the remote target."""
        if self.route_set:
            return NameAddr.parse(self.route_set[0]).uri
        return self.remote_target


def _without_tag(addr: NameAddr) -> str:
    params = {k: v for k, v in addr.params.items() if k != "tag"}
    return str(NameAddr(addr.display_name, addr.uri, params))


def _is_loose(route: str) -> bool:
    try:
        return "lr" in NameAddr.parse(route).uri.params
    except SipParseError:
        return True
