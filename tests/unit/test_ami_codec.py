"""The AMI wire codec and the sans-IO session: framing, correlation, typed events, bad input."""

from __future__ import annotations

import pytest

from engine.ami.client import filter_fields
from engine.ami.codec import (
    MAX_MESSAGE_BYTES,
    AmiMessage,
    AmiParser,
    AmiProtocolError,
    event_name,
    serialize_action,
)
from engine.ami.events import (
    AmiEvent,
    HangupEvent,
    OriginateResponseEvent,
    ShutdownEvent,
    VarSetEvent,
    typed_event,
)
from engine.ami.protocol import AmiSession

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
HANGUP = (b"Event: Hangup\r\nPrivilege: call,all\r\nChannel: PJSIP/sipp-00000001\r\n"
          b"ChannelState: 6\r\nCallerIDNum: 13800138000\r\n"
          b"CallerIDName: \xe5\xbc\xa0\xe4\xb8\x89\r\n"
          b"Exten: 4000\r\nContext: ivr-inbound\r\nUniqueid: 1700000000.1\r\n"
          b"Linkedid: 1700000000.1\r\nCause: 17\r\nCause-txt: User busy\r\n\r\n")


def test_banner_then_messages_split_anywhere() -> None:
    login = b"Response: Success\r\nActionID: a1\r\nMessage: Authentication accepted\r\n\r\n"
    stream = BANNER + login + HANGUP
    for cut in range(1, len(stream)):
        p = AmiParser()
        blocks = p.feed(stream[:cut]) + p.feed(stream[cut:])
        assert p.banner == "Asterisk Call Manager/11.0.0"
        assert len(blocks) == 2 and p.buffered == 0
    msg = AmiMessage.parse(blocks[1])
    assert msg.event == "Hangup" and msg.get("cause") == "17"  # keys are case-insensitive
    assert msg.get("CallerIDName") == "张三"  # UTF-8 caller names survive


def test_round_trip_is_byte_exact_and_keeps_repeated_keys() -> None:
    raw = b"Response: Success\r\nActionID: x\r\nOutput: line one\r\nOutput: line two\r\n\r\n"
    (block,) = AmiParser(expect_banner=False).feed(raw)
    msg = AmiMessage.parse(block)
    assert msg.getall("Output") == ["line one", "line two"]
    assert msg.serialize() == raw


def test_not_an_ami_banner_is_refused() -> None:
    with pytest.raises(AmiProtocolError, match="not an AMI banner"):
        AmiParser().feed(b"SSH-2.0-OpenSSH_9.2\r\n")
    with pytest.raises(AmiProtocolError, match="no AMI banner"):
        AmiParser().feed(b"x" * 300)


def test_endless_message_is_refused_not_buffered_forever() -> None:
    p = AmiParser(expect_banner=False, max_message_bytes=1000)
    with pytest.raises(AmiProtocolError, match="exceeds 1000 bytes"):
        p.feed(b"Event: X\r\nData: " + b"a" * 2000)
    assert MAX_MESSAGE_BYTES >= 65536


def test_serialize_action_orders_fields_and_refuses_injection() -> None:
    data = serialize_action("Originate", "ivr-1", [("Channel", "PJSIP/100"),
                                                   ("Variable", "A=1"), ("Variable", "B=2")])
    assert data == (b"Action: Originate\r\nActionID: ivr-1\r\nChannel: PJSIP/100\r\n"
                    b"Variable: A=1\r\nVariable: B=2\r\n\r\n")
    with pytest.raises(ValueError, match="CallerID: a value may not contain CR or LF"):
        serialize_action("Originate", "ivr-2", [("CallerID", "x\r\nAction: Hangup")])
    with pytest.raises(ValueError, match="not a valid key"):
        serialize_action("Originate", "ivr-3", [("Bad Key", "v")])


def test_event_name_reads_only_the_first_line() -> None:
    assert event_name(HANGUP[:-4]) == "Hangup"
    assert event_name(b"Response: Success\r\nActionID: 1") is None


def test_typed_events() -> None:
    ev = typed_event(AmiMessage.parse(HANGUP[:-4]))
    assert isinstance(ev, HangupEvent)
    assert (ev.cause, ev.uniqueid, ev.caller_id_num, ev.state) == (17, "1700000000.1",
                                                                   "13800138000", 6)
    var = typed_event(AmiMessage.parse(
        b"Event: VarSet\r\nChannel: PJSIP/a-1\r\nUniqueid: 1.2\r\nVariable: IVR_UUID\r\n"
        b"Value: 0b4c1b8e-7d0e-4b8b-9b7a-1f0c8f2d9e11"))
    assert isinstance(var, VarSetEvent) and var.variable == "IVR_UUID"
    orig = typed_event(AmiMessage.parse(
        b"Event: OriginateResponse\r\nActionID: originate-9\r\nResponse: Failure\r\n"
        b"Channel: PJSIP/x\r\nReason: five\r\nUniqueid: 9"))
    assert isinstance(orig, OriginateResponseEvent)
    assert orig.reason == 0 and orig.action_id == "originate-9"  # a bad number reads as 0
    shut = typed_event(AmiMessage.parse(b"Event: Shutdown\r\nShutdown: Cleanly\r\nRestart: True"))
    assert isinstance(shut, ShutdownEvent) and shut.restart
    other = typed_event(AmiMessage.parse(b"Event: PeerStatus\r\nPeer: PJSIP/x"))
    assert type(other) is AmiEvent and other.event == "PeerStatus"


def test_session_correlates_responses_and_event_lists() -> None:
    s = AmiSession(lambda name, raw: name == "Hangup")
    s.expect("a1")
    s.expect("a2")
    results, events = s.receive(
        BANNER
        + b"Response: Success\r\nActionID: a2\r\nEventList: start\r\n\r\n"
        + b"Event: CoreShowChannel\r\nActionID: a2\r\nChannel: PJSIP/x\r\n\r\n"
        + HANGUP
        + b"Response: Error\r\nActionID: a1\r\nMessage: No such channel\r\n\r\n"
        + b"Event: CoreShowChannelsComplete\r\nActionID: a2\r\nEventList: Complete\r\n\r\n"
        + b"Response: Success\r\nActionID: stale\r\n\r\n"
        + b"Event: Newexten\r\nChannel: PJSIP/x\r\n\r\n")
    assert [r.action_id for r in results] == ["a1", "a2"]
    assert not results[0].ok and results[0].message == "No such channel"
    assert results[1].ok and [e.event for e in results[1].events] == [
        "CoreShowChannel", "CoreShowChannelsComplete"]
    assert [e.event for e in events] == ["Hangup"]
    assert s.events_dropped == 1 and s.stray_responses == 1


def test_event_echoing_a_finished_action_is_an_ordinary_event() -> None:
    s = AmiSession(lambda name, raw: name == "OriginateResponse", expect_banner=False)
    s.expect("o1")
    results, _ = s.receive(b"Response: Success\r\nActionID: o1\r\nMessage: queued\r\n\r\n")
    assert results[0].ok
    _, events = s.receive(b"Event: OriginateResponse\r\nActionID: o1\r\nResponse: Success\r\n"
                          b"Reason: 4\r\n\r\n")
    assert [e.event for e in events] == ["OriginateResponse"]


@pytest.mark.parametrize(("spec", "fields"), [
    ("eventfilter(action(include),name(Hangup)) =",
     [("Operation", "Add"), ("MatchCriteria", "action(include),name(Hangup)"), ("Filter", "")]),
    ("eventfilter(name(VarSet),header(Variable),method(starts_with)) = IVR_",
     [("Operation", "Add"), ("MatchCriteria", "name(VarSet),header(Variable),method(starts_with)"),
      ("Filter", "IVR_")]),
    ("!Channel: Local/", [("Operation", "Add"), ("Filter", "!Channel: Local/")]),
])
def test_event_filter_lines_become_filter_actions(spec: str, fields: list[tuple[str, str]]
                                                  ) -> None:
    assert filter_fields(spec) == fields


def test_malformed_event_filter_is_refused_with_the_line() -> None:
    with pytest.raises(ValueError, match="expected eventfilter"):
        filter_fields("eventfilter(name(Hangup)")
