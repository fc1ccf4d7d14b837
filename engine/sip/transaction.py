"""SIP transactions (RFC 3261 §17, with the RFC 6026 "Accepted" states), sans-IO.

The layer never touches a socket or a clock. The asyncio side feeds it parsed messages with the
current time and calls :meth:`TransactionLayer.poll` when :meth:`next_deadline` comes due; the
layer answers by calling its :class:`Sender` (bytes to an address) and the per-transaction
listeners or the :class:`TransactionUser` (messages upward). Retransmissions reuse the bytes
serialized once, so a retransmission storm costs a ``sendto`` each and nothing more.

Timer names follow §17 (A-K) and RFC 6026 (L, M). On reliable transports retransmission timers
are never started and the wait timers D, I, J, K are zero, as §17 requires.
"""

from __future__ import annotations

import enum
import heapq
import itertools
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from engine.sip.addr import Address
from engine.sip.message import SipRequest, SipResponse

log = logging.getLogger("ivr.sip.txn")

T1_S = 0.5  # RTT estimate
T2_S = 4.0  # maximum retransmit interval for non-INVITE requests and INVITE responses
T4_S = 5.0  # maximum time a message stays in the network
TIMEOUT_S = 64 * T1_S  # timers B, F, H, L, M


class State(enum.Enum):
    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    ACCEPTED = "accepted"
    TERMINATED = "terminated"


class Sender(Protocol):
    def send(self, data: bytes, dest: Address) -> None: ...


class ClientListener(Protocol):
    """Receives what happens to one client transaction."""

    def on_response(self, txn: ClientTransaction, response: SipResponse) -> None: ...

    def on_timeout(self, txn: ClientTransaction) -> None: ...


class TransactionUser(Protocol):
    """The layer above (the UA core): new requests and stray messages."""

    def on_request(self, request: SipRequest, txn: ServerTransaction, source: Address) -> None:
        """A new request (not ACK). CANCEL arrives here too, with its own transaction."""

    def on_ack(self, request: SipRequest, source: Address) -> None:
        """An ACK that matched no server transaction: the ACK of a 2xx (a dialog's business)."""

    def on_stray_response(self, response: SipResponse, source: Address) -> None:
        """A response with no transaction, e.g. a retransmitted 2xx to INVITE (re-send ACK)."""

    def on_server_timeout(self, txn: ServerTransaction) -> None:
        """Timer H fired: a non-2xx final response to INVITE was never acknowledged."""


@dataclass(slots=True)
class _Timer:
    name: str
    interval: float  # current retransmit interval (for A, E, G)
    handle: int  # sequence id; a timer is cancelled by replacing its id


class _Txn:
    """What client and server transactions share: state, timers, the retransmit buffer."""

    __slots__ = ("_layer", "key", "dest", "state", "timers", "_last_bytes", "request")

    def __init__(self, layer: TransactionLayer, key: tuple[str, ...], request: SipRequest,
                 dest: Address) -> None:
        self._layer = layer
        self.key = key
        self.request = request
        self.dest = dest
        self.state = State.TRYING
        self.timers: dict[str, _Timer] = {}
        self._last_bytes: bytes | None = None

    @property
    def reliable(self) -> bool:
        return self.dest.reliable

    def _start(self, name: str, delay: float, interval: float = 0.0) -> None:
        self.timers[name] = self._layer._schedule(self, name, delay, interval)

    def _stop(self, *names: str) -> None:
        for n in names:
            self.timers.pop(n, None)

    def _terminate(self) -> None:
        self.state = State.TERMINATED
        self.timers.clear()
        self._layer._forget(self)

    def on_timer(self, name: str, timer: _Timer, now: float) -> None:
        raise NotImplementedError


class ClientTransaction(_Txn):
    """INVITE (§17.1.1) or non-INVITE (§17.1.2) client transaction."""

    __slots__ = ("listener", "is_invite", "_ack_bytes")

    def __init__(self, layer: TransactionLayer, key: tuple[str, ...], request: SipRequest,
                 dest: Address, listener: ClientListener) -> None:
        super().__init__(layer, key, request, dest)
        self.listener = listener
        self.is_invite = request.method == "INVITE"
        self._ack_bytes: bytes | None = None
        self.state = State.CALLING if self.is_invite else State.TRYING

    @property
    def branch(self) -> str:
        return self.key[0]

    def start(self) -> None:
        self._last_bytes = self.request.serialize()
        self._layer.sender.send(self._last_bytes, self.dest)
        if self.is_invite:
            if not self.reliable:
                self._start("A", T1_S, T1_S)
            self._start("B", TIMEOUT_S)
        else:
            if not self.reliable:
                self._start("E", T1_S, T1_S)
            self._start("F", TIMEOUT_S)

    def receive(self, response: SipResponse) -> None:
        code = response.status
        if self.is_invite:
            self._receive_invite(response, code)
        else:
            self._receive_non_invite(response, code)

    def _receive_invite(self, response: SipResponse, code: int) -> None:
        if self.state in (State.CALLING, State.PROCEEDING):
            self._stop("A")
            if code < 200:
                # §17.1.1.2: Timer B only bounds the Calling state; a phone may ring for minutes
                # (the TU's own ring timeout and CANCEL end that).
                self._stop("B")
                self.state = State.PROCEEDING
                self.listener.on_response(self, response)
            elif code < 300:
                # RFC 6026: stay to pass 2xx retransmissions up to the TU (which ACKs them).
                self.state = State.ACCEPTED
                self._stop("B")
                self._start("M", TIMEOUT_S)
                self.listener.on_response(self, response)
            else:
                self.state = State.COMPLETED
                self._stop("B")
                self._ack_bytes = build_non2xx_ack(self.request, response).serialize()
                self._layer.sender.send(self._ack_bytes, self.dest)
                self._start("D", 0.0 if self.reliable else 32.0)
                self.listener.on_response(self, response)
        elif self.state is State.ACCEPTED and 200 <= code < 300:
            self.listener.on_response(self, response)  # a 2xx retransmission or another fork
        elif self.state is State.COMPLETED and code >= 300 and self._ack_bytes is not None:
            self._layer.sender.send(self._ack_bytes, self.dest)  # absorb; re-ACK

    def _receive_non_invite(self, response: SipResponse, code: int) -> None:
        if self.state not in (State.TRYING, State.PROCEEDING):
            return  # retransmitted final in Completed: absorbed
        if code < 200:
            self.state = State.PROCEEDING
            self.listener.on_response(self, response)
            return
        self.state = State.COMPLETED
        self._stop("E", "F")
        self._start("K", 0.0 if self.reliable else T4_S)
        self.listener.on_response(self, response)

    def on_timer(self, name: str, timer: _Timer, now: float) -> None:
        if name in ("A", "E"):
            assert self._last_bytes is not None
            self._layer.sender.send(self._last_bytes, self.dest)
            self._layer.retransmissions += 1
            if name == "A":
                interval = timer.interval * 2
            else:
                interval = T2_S if self.state is State.PROCEEDING else min(
                    timer.interval * 2, T2_S)
            self._start(name, interval, interval)
        elif name in ("B", "F"):
            self._terminate()
            self.listener.on_timeout(self)
        else:  # D, K, M: wait timers over
            self._terminate()

    def cancel_timers_for_cancel(self) -> None:
        """Called when a CANCEL is sent: per §9.1 keep waiting for the 487."""


class ServerTransaction(_Txn):
    """INVITE (§17.2.1) or non-INVITE (§17.2.2) server transaction."""

    __slots__ = ("is_invite", "last_response", "cancelled", "_on_done")

    def __init__(self, layer: TransactionLayer, key: tuple[str, ...], request: SipRequest,
                 dest: Address) -> None:
        super().__init__(layer, key, request, dest)
        self.is_invite = request.method == "INVITE"
        self.state = State.PROCEEDING if self.is_invite else State.TRYING
        self.last_response: SipResponse | None = None
        self.cancelled = False
        self._on_done: Callable[[ServerTransaction], None] | None = None

    @property
    def final_sent(self) -> bool:
        return self.state not in (State.TRYING, State.PROCEEDING)

    def respond(self, response: SipResponse) -> None:
        """Send ``response`` (built with ``make_response``) and advance the state machine."""
        if self.state is State.TERMINATED:
            log.debug("response %s on terminated transaction dropped", response.status)
            return
        code = response.status
        if self.final_sent and not (self.state is State.ACCEPTED and 200 <= code < 300):
            log.debug("second final response %s dropped", code)
            return
        self.last_response = response
        self._last_bytes = response.serialize()
        self._layer.sender.send(self._last_bytes, self.dest)
        self._layer.responses_sent[code // 100] += 1
        if code < 200:
            self.state = State.PROCEEDING
            return
        if self.is_invite:
            if code < 300:
                # RFC 6026 Accepted: absorb INVITE retransmissions; the TU retransmits the 2xx.
                self.state = State.ACCEPTED
                self._start("L", TIMEOUT_S)
            else:
                self.state = State.COMPLETED
                if not self.reliable:
                    self._start("G", T1_S, T1_S)
                self._start("H", TIMEOUT_S)
        else:
            self.state = State.COMPLETED
            self._start("J", 0.0 if self.reliable else TIMEOUT_S)

    def retransmit_last(self) -> None:
        if self._last_bytes is not None:
            self._layer.sender.send(self._last_bytes, self.dest)

    def receive_retransmission(self, request: SipRequest) -> None:
        if request.method == "ACK":
            if self.is_invite and self.state is State.COMPLETED:
                self.state = State.CONFIRMED
                self._stop("G", "H")
                self._start("I", 0.0 if self.reliable else T4_S)
            return
        if self.state is State.ACCEPTED:
            return  # RFC 6026 §7.1: INVITE retransmissions are absorbed here
        if self._last_bytes is not None and self.state in (
            State.PROCEEDING, State.COMPLETED, State.TRYING
        ):
            self._layer.sender.send(self._last_bytes, self.dest)
            self._layer.absorbed += 1

    def on_timer(self, name: str, timer: _Timer, now: float) -> None:
        if name == "G":
            if self.state is State.COMPLETED and self._last_bytes is not None:
                self._layer.sender.send(self._last_bytes, self.dest)
                self._layer.retransmissions += 1
                interval = min(timer.interval * 2, T2_S)
                self._start("G", interval, interval)
        elif name == "H":
            self._terminate()
            self._layer.tu.on_server_timeout(self)
        else:  # I, J, L
            self._terminate()


def mirror_invite(invite: SipRequest, method: str, to: str | None = None) -> SipRequest:
    """A request that shares the INVITE's transaction identity: its Request-URI, top Via (same
    branch), Route set, From, Call-ID and CSeq number. CANCEL (§9.1) is this with the INVITE's
    To; the ACK of a non-2xx (§17.1.1.3) with the To of the response (it carries the tag)."""
    req = SipRequest(method, invite.uri)
    h = req.headers
    h.add("Via", invite.headers.get_all("Via")[0])
    for route in invite.headers.get_all("Route"):
        h.add("Route", route)
    h.add("Max-Forwards", "70")
    h.add("From", invite.headers.get("From") or "")
    h.add("To", to if to is not None else invite.headers.get("To") or "")
    h.add("Call-ID", invite.call_id)
    h.add("CSeq", f"{invite.cseq[0]} {method}")
    return req


def build_non2xx_ack(invite: SipRequest, response: SipResponse) -> SipRequest:
    """§17.1.1.3: the ACK the client transaction sends for a 300-699 final response."""
    return mirror_invite(invite, "ACK", response.headers.get("To") or "")


def client_key(branch: str, method: str) -> tuple[str, ...]:
    # §17.1.3: branch of the top Via + CSeq method. ACK for non-2xx is sent within the INVITE
    # transaction, so responses to CANCEL and INVITE with the same branch stay apart by method.
    return (branch, method)


def server_key(request: SipRequest) -> tuple[str, ...] | None:
    """§17.2.3 key: branch + sent-by + method (ACK matches its INVITE). None for RFC 2543 peers."""
    via = request.vias[0]
    branch = via.branch or ""
    if not branch.startswith("z9hG4bK"):
        return None
    method = "INVITE" if request.method == "ACK" else request.method
    return (branch, via.host.lower(), str(via.port or ""), method)


class TransactionLayer:
    """All transactions of one UA, and the timer heap that drives them."""

    def __init__(self, sender: Sender, tu: TransactionUser) -> None:
        self.sender = sender
        self.tu = tu
        self.client: dict[tuple[str, ...], ClientTransaction] = {}
        self.server: dict[tuple[str, ...], ServerTransaction] = {}
        self._heap: list[tuple[float, int, _Txn, str]] = []
        self._seq = itertools.count()
        self._now = 0.0
        self.retransmissions = 0
        self.responses_sent: Counter[int] = Counter()  # by class: 1 (1xx) ... 6 (6xx)
        self.absorbed = 0
        self.on_deadline_change: Callable[[float], None] | None = None

    # -- timers --------------------------------------------------------------------------------

    def _schedule(self, txn: _Txn, name: str, delay: float, interval: float) -> _Timer:
        handle = next(self._seq)
        deadline = self._now + delay
        first = not self._heap or deadline < self._heap[0][0]
        heapq.heappush(self._heap, (deadline, handle, txn, name))
        if first and self.on_deadline_change is not None:
            self.on_deadline_change(deadline)
        return _Timer(name, interval, handle)

    def next_deadline(self) -> float | None:
        while self._heap:
            deadline, handle, txn, name = self._heap[0]
            t = txn.timers.get(name)
            if t is not None and t.handle == handle:
                return deadline
            heapq.heappop(self._heap)  # cancelled or superseded
        return None

    def poll(self, now: float) -> None:
        """Fire every timer due at ``now``."""
        self._now = now
        while self._heap and self._heap[0][0] <= now:
            _, handle, txn, name = heapq.heappop(self._heap)
            timer = txn.timers.get(name)
            if timer is None or timer.handle != handle:
                continue
            del txn.timers[name]
            txn.on_timer(name, timer, now)

    def set_time(self, now: float) -> None:
        self._now = now

    def _forget(self, txn: _Txn) -> None:
        if isinstance(txn, ClientTransaction):
            self.client.pop(txn.key, None)
        else:
            self.server.pop(txn.key, None)

    # -- client side ---------------------------------------------------------------------------

    def send_request(self, request: SipRequest, dest: Address, listener: ClientListener,
                     now: float) -> ClientTransaction:
        """Start a client transaction. The request's top Via must carry a fresh branch."""
        self._now = now
        branch = request.vias[0].branch or ""
        txn = ClientTransaction(self, client_key(branch, request.method), request, dest, listener)
        self.client[txn.key] = txn
        txn.start()
        return txn

    def send_ack(self, ack: SipRequest, dest: Address) -> bytes:
        """An ACK for a 2xx is not a transaction (§17.1.1.3); returns the bytes for re-sending."""
        data = ack.serialize()
        self.sender.send(data, dest)
        return data

    def receive_response(self, response: SipResponse, source: Address, now: float) -> None:
        self._now = now
        vias = response.vias
        if not vias:
            return
        branch = vias[0].branch or ""
        method = response.cseq[1]
        txn = self.client.get(client_key(branch, method))
        if txn is None:
            self.tu.on_stray_response(response, source)
            return
        txn.receive(response)

    # -- server side ---------------------------------------------------------------------------

    def receive_request(self, request: SipRequest, source: Address, now: float) -> None:
        self._now = now
        key = server_key(request)
        if key is not None:
            txn = self.server.get(key)
            if txn is not None:
                if request.method == "ACK" and txn.last_response is not None and (
                    200 <= txn.last_response.status < 300
                ):
                    self.tu.on_ack(request, source)  # ACK of a 2xx belongs to the dialog
                    return
                txn.receive_retransmission(request)
                return
        if request.method == "ACK":
            self.tu.on_ack(request, source)
            return
        if key is None:
            # RFC 2543 peer without a magic cookie: key on Call-ID/CSeq/From tag/sent-by.
            via = request.vias[0]
            key = ("2543", request.call_id, str(request.cseq[0]), request.method,
                   request.from_.tag or "", via.host, str(via.port or ""))
            existing = self.server.get(key)
            if existing is not None:
                existing.receive_retransmission(request)
                return
        txn = ServerTransaction(self, key, request, response_destination(request, source))
        self.server[key] = txn
        self.tu.on_request(request, txn, source)

    def find_invite_for_cancel(self, cancel: SipRequest) -> ServerTransaction | None:
        """§9.2: the INVITE server transaction a CANCEL refers to (same branch and sent-by)."""
        key = server_key(cancel)
        if key is None:
            return None
        return self.server.get((*key[:3], "INVITE"))


def response_destination(request: SipRequest, source: Address) -> Address:
    """§18.2.2 with RFC 3581: where responses to ``request`` go.

    Reliable transports answer on the connection the request came in on (the source address).
    Over UDP, ``received``/``rport`` (added on receipt) win over the Via's sent-by.
    """
    if source.reliable:
        return source
    via = request.vias[0]
    host = via.params.get("received") or via.host
    rport = via.params.get("rport")
    port = int(rport) if rport else via.port or 5060
    return Address("udp", host, port)
