"""RFC 3261 §17 transaction state machines, driven by explicit time (no sockets, no sleeps)."""

from __future__ import annotations

from engine.sip.addr import Address
from engine.sip.dialog import Dialog, DialogError
from engine.sip.message import SipRequest, SipResponse, make_response, parse_message
from engine.sip.transaction import (
    T1_S,
    T2_S,
    TIMEOUT_S,
    ClientTransaction,
    ServerTransaction,
    State,
    TransactionLayer,
)

UDP = Address("udp", "127.0.0.1", 5070)
TCP = Address("tcp", "127.0.0.1", 5070)


def request(method: str = "INVITE", branch: str = "z9hG4bKabc", cseq: int = 1,
            extra: str = "") -> SipRequest:
    text = (
        f"{method} sip:svc@127.0.0.1:5080 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=ft\r\nTo: <sip:svc@127.0.0.1>\r\n"
        f"Call-ID: call-1\r\nCSeq: {cseq} {method}\r\n"
        "Contact: <sip:a@127.0.0.1:5070>\r\n" + extra + "Content-Length: 0\r\n\r\n"
    )
    msg = parse_message(text.encode())
    assert isinstance(msg, SipRequest)
    return msg


class Wire:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, Address]] = []

    def send(self, data: bytes, dest: Address) -> None:
        self.sent.append((data, dest))

    def first_lines(self) -> list[str]:
        return [d.split(b"\r\n", 1)[0].decode() for d, _ in self.sent]


class Listener:
    def __init__(self) -> None:
        self.responses: list[int] = []
        self.timeouts = 0

    def on_response(self, txn: ClientTransaction, response: SipResponse) -> None:
        self.responses.append(response.status)

    def on_timeout(self, txn: ClientTransaction) -> None:
        self.timeouts += 1


class TU:
    def __init__(self) -> None:
        self.requests: list[tuple[SipRequest, ServerTransaction]] = []
        self.acks: list[SipRequest] = []
        self.stray: list[SipResponse] = []
        self.server_timeouts = 0

    def on_request(self, request, txn, source):  # type: ignore[no-untyped-def]
        self.requests.append((request, txn))

    def on_ack(self, request, source):  # type: ignore[no-untyped-def]
        self.acks.append(request)

    def on_stray_response(self, response, source):  # type: ignore[no-untyped-def]
        self.stray.append(response)

    def on_server_timeout(self, txn):  # type: ignore[no-untyped-def]
        self.server_timeouts += 1


def run_until(layer: TransactionLayer, end: float) -> None:
    while (d := layer.next_deadline()) is not None and d <= end:
        layer.poll(d)
    layer.set_time(end)


def test_timer_a_doubles_and_timer_b_times_out_invite() -> None:
    """§17.1.1.2: INVITE retransmitted at T1, 2T1, 4T1...; Timer B = 64*T1 -> timeout."""
    wire, listener = Wire(), Listener()
    layer = TransactionLayer(wire, TU())
    layer.send_request(request(), UDP, listener, now=0.0)
    run_until(layer, TIMEOUT_S + 0.01)
    # Sends at 0, .5, 1.5, 3.5, 7.5, 15.5, 31.5 -> 7 copies before B fires at 32 s.
    assert len(wire.sent) == 7
    assert listener.timeouts == 1
    assert layer.client == {}


def test_no_retransmission_on_tcp() -> None:
    """§17.1.1.2: Timer A is not started on reliable transports."""
    wire, listener = Wire(), Listener()
    layer = TransactionLayer(wire, TU())
    layer.send_request(request(), TCP, listener, now=0.0)
    run_until(layer, TIMEOUT_S + 1)
    assert len(wire.sent) == 1 and listener.timeouts == 1


def test_provisional_stops_timer_a_and_non2xx_is_acked_in_transaction() -> None:
    """§17.1.1.3: a 4xx is ACKed by the transaction with the INVITE's branch; retransmitted
    4xx are absorbed and re-ACKed, not passed up again."""
    wire, listener = Wire(), Listener()
    layer = TransactionLayer(wire, TU())
    inv = request()
    layer.send_request(inv, UDP, listener, now=0.0)
    layer.receive_response(make_response(inv, 180, to_tag="tt"), UDP, now=0.1)
    run_until(layer, 5.0)
    assert len(wire.sent) == 1  # Timer A stopped by the 180
    busy = make_response(inv, 486, to_tag="tt")
    layer.receive_response(busy, UDP, now=5.0)
    layer.receive_response(busy, UDP, now=5.2)
    assert listener.responses == [180, 486]
    acks = [d for d, _ in wire.sent if d.startswith(b"ACK")]
    assert len(acks) == 2
    ack = parse_message(acks[0])
    assert isinstance(ack, SipRequest)
    assert ack.vias[0].branch == "z9hG4bKabc" and ack.cseq == (1, "ACK")
    assert ack.to.tag == "tt"
    run_until(layer, 5.0 + 32.1)  # Timer D
    assert layer.client == {}


def test_2xx_retransmissions_reach_the_tu_in_accepted_state() -> None:
    """RFC 6026 §8.4: the client INVITE transaction passes 2xx retransmissions up."""
    wire, listener = Wire(), Listener()
    layer = TransactionLayer(wire, TU())
    inv = request()
    txn = layer.send_request(inv, UDP, listener, now=0.0)
    ok = make_response(inv, 200, to_tag="tt")
    layer.receive_response(ok, UDP, now=0.1)
    layer.receive_response(ok, UDP, now=0.6)
    assert listener.responses == [200, 200]
    assert txn.state is State.ACCEPTED
    run_until(layer, 0.1 + TIMEOUT_S + 0.01)  # Timer M
    assert txn.state is State.TERMINATED


def test_non_invite_timer_e_caps_at_t2_and_timer_f() -> None:
    """§17.1.2.2: Timer E doubles up to T2; Timer F = 64*T1."""
    wire, listener = Wire(), Listener()
    layer = TransactionLayer(wire, TU())
    layer.send_request(request("OPTIONS"), UDP, listener, now=0.0)
    run_until(layer, TIMEOUT_S + 0.01)
    times = [0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert len(wire.sent) == len(times)
    assert listener.timeouts == 1


def test_non_invite_retransmits_every_t2_when_proceeding() -> None:
    wire, listener = Wire(), Listener()
    layer = TransactionLayer(wire, TU())
    req = request("OPTIONS")
    layer.send_request(req, UDP, listener, now=0.0)
    layer.receive_response(make_response(req, 100), UDP, now=0.1)
    run_until(layer, 0.5 + T2_S + 0.01)
    assert len(wire.sent) == 3  # 0, 0.5 (Timer E fired), then 4.5 (T2 in Proceeding)


def test_server_absorbs_retransmitted_request_and_resends_response() -> None:
    """§17.2.2: a retransmitted request gets the last response again, not a new TU event."""
    wire, tu = Wire(), TU()
    layer = TransactionLayer(wire, tu)
    req = request("OPTIONS")
    layer.receive_request(req, UDP, now=0.0)
    assert len(tu.requests) == 1
    tu.requests[0][1].respond(make_response(req, 200, to_tag="x"))
    layer.receive_request(request("OPTIONS"), UDP, now=0.3)
    assert len(tu.requests) == 1
    assert wire.first_lines() == ["SIP/2.0 200 OK", "SIP/2.0 200 OK"]
    assert layer.absorbed == 1
    run_until(layer, TIMEOUT_S + 0.1)  # Timer J
    assert layer.server == {}


def test_server_invite_non2xx_retransmits_until_ack() -> None:
    """§17.2.1: Timer G retransmits the 4xx until the ACK; the ACK is absorbed (Confirmed)."""
    wire, tu = Wire(), TU()
    layer = TransactionLayer(wire, tu)
    inv = request()
    layer.receive_request(inv, UDP, now=0.0)
    txn = tu.requests[0][1]
    txn.respond(make_response(inv, 486, to_tag="x"))
    run_until(layer, 1.6)
    assert wire.first_lines().count("SIP/2.0 486 Busy Here") == 3  # 0, 0.5, 1.5
    layer.receive_request(request("ACK"), UDP, now=1.7)
    assert txn.state is State.CONFIRMED and tu.acks == []
    run_until(layer, 10)
    assert wire.first_lines().count("SIP/2.0 486 Busy Here") == 3
    assert layer.server == {}


def test_server_invite_timer_h_without_ack() -> None:
    wire, tu = Wire(), TU()
    layer = TransactionLayer(wire, tu)
    inv = request()
    layer.receive_request(inv, UDP, now=0.0)
    tu.requests[0][1].respond(make_response(inv, 603, to_tag="x"))
    run_until(layer, TIMEOUT_S + 0.1)
    assert tu.server_timeouts == 1


def test_ack_for_2xx_goes_to_the_tu_and_invite_retransmission_is_absorbed() -> None:
    """RFC 6026 §7.1: in Accepted the INVITE retransmission is absorbed, ACK passes up."""
    wire, tu = Wire(), TU()
    layer = TransactionLayer(wire, tu)
    inv = request()
    layer.receive_request(inv, UDP, now=0.0)
    tu.requests[0][1].respond(make_response(inv, 200, to_tag="x"))
    layer.receive_request(request(), UDP, now=0.2)
    assert len(tu.requests) == 1 and len(wire.sent) == 1
    layer.receive_request(request("ACK", branch="z9hG4bKother"), UDP, now=0.3)
    assert len(tu.acks) == 1


def test_cancel_matches_its_invite() -> None:
    wire, tu = Wire(), TU()
    layer = TransactionLayer(wire, tu)
    layer.receive_request(request(), UDP, now=0.0)
    cancel = request("CANCEL")
    assert layer.find_invite_for_cancel(cancel) is tu.requests[0][1]
    assert layer.find_invite_for_cancel(request("CANCEL", branch="z9hG4bKzzz")) is None


def test_rport_response_destination() -> None:
    """RFC 3581: responses go to received/rport, not to the Via sent-by."""
    wire, tu = Wire(), TU()
    layer = TransactionLayer(wire, tu)
    req = request("OPTIONS")
    req.headers.set("Via", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKr;rport=40000;"
                           "received=192.0.2.7")
    layer.receive_request(req, UDP, now=0.0)
    tu.requests[0][1].respond(make_response(req, 200))
    assert wire.sent[-1][1] == Address("udp", "192.0.2.7", 40000)


def test_dialog_uas_builds_in_dialog_requests_with_route_set() -> None:
    inv = request(extra="Record-Route: <sip:p1.example;lr>, <sip:p2.example;lr>\r\n")
    d = Dialog.as_uas(inv, "localtag")
    bye = d.create_request("BYE", via="SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKq")
    assert str(bye.uri) == "sip:a@127.0.0.1:5070"
    assert bye.headers.get_all("Route") == ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]
    assert bye.to.tag == "ft" and bye.from_.tag == "localtag"
    assert bye.cseq[1] == "BYE"
    assert d.next_hop_uri().host == "p1.example"


def test_dialog_rejects_out_of_order_cseq_and_refreshes_target() -> None:
    inv = request(cseq=5)
    d = Dialog.as_uas(inv, "lt")
    try:
        d.receive_request(request("INFO", cseq=4))
        raise AssertionError("lower CSeq accepted")
    except DialogError as e:
        assert e.status == 500
    reinv = request("INVITE", cseq=6)
    reinv.headers.set("Contact", "<sip:a@198.51.100.9:6000>")
    d.receive_request(reinv)
    assert d.remote_target.host == "198.51.100.9"
    assert d.remote_seq == 6


def test_timers_t1_constant() -> None:
    assert T1_S == 0.5 and TIMEOUT_S == 32.0


def test_rfc3261_17_1_1_2_timer_b_stops_once_the_callee_rings() -> None:
    """A provisional response ends Timer B: a call ringing for 40 s does not time out (it used
    to end with 408 after 32 s of ringing)."""
    wire, listener = Wire(), Listener()
    layer = TransactionLayer(wire, TU())
    inv = request()
    layer.send_request(inv, UDP, listener, now=0.0)
    layer.receive_response(make_response(inv, 180, to_tag="tt"), UDP, now=0.2)
    run_until(layer, 40.0)
    assert listener.timeouts == 0 and len(wire.sent) == 1
    layer.receive_response(make_response(inv, 200, to_tag="tt"), UDP, now=41.0)
    assert listener.responses == [180, 200]
