"""AudioSocket framing, the dispositions of unanswered Asterisk calls, and small helpers."""

from __future__ import annotations

import struct

import pytest

from engine.ami.audiosocket import (
    HANGUP_MESSAGE,
    KIND_AUDIO,
    KIND_DTMF,
    KIND_ERROR,
    KIND_UUID,
    AudioSocketError,
    AudioSocketMessage,
    AudioSocketParser,
    audio_message,
    dtmf_message,
    uuid_message,
)
from engine.ami.call import exten_of
from engine.ami.dialler import caller_id_of
from engine.ami.originate import call_uuid, caller_number, header_line, variable_line
from engine.dispositions import asterisk_disposition

CALL = "0b4c1b8e-7d0e-4b8b-9b7a-1f0c8f2d9e11"


def test_messages_as_asterisk_writes_them() -> None:
    assert uuid_message(CALL) == b"\x01\x00\x10" + bytes.fromhex(CALL.replace("-", ""))
    assert HANGUP_MESSAGE == b"\x00\x00\x00"
    assert dtmf_message("#") == b"\x03\x00\x01#"
    assert audio_message(b"\x01\x00" * 160)[:3] == b"\x10\x01\x40"


def test_parser_splits_a_stream_cut_anywhere() -> None:
    stream = (uuid_message(CALL) + audio_message(bytes(320)) + dtmf_message("5")
              + AudioSocketMessage(KIND_ERROR, b"\x02").serialize() + HANGUP_MESSAGE)
    for cut in range(len(stream)):
        p = AudioSocketParser()
        msgs = p.feed(stream[:cut]) + p.feed(stream[cut:])
        assert [m.kind for m in msgs] == [KIND_UUID, KIND_AUDIO, KIND_DTMF, KIND_ERROR, 0]
        assert p.buffered == 0
    assert msgs[0].uuid == CALL and msgs[2].digit == "5" and msgs[3].error_code == 2
    assert msgs[1].sample_rate_hz == 8000 and len(msgs[1].payload) == 320


@pytest.mark.parametrize(("raw", "what"), [
    (b"\x42\x00\x00", "unknown AudioSocket message kind 0x42"),
    (b"\x01\x00\x05abcde", "uuid message of 5 bytes"),
    (b"\x10\x00\x03abc", "audio message of 3 bytes"),
    (b"\x10\xff\xff", "audio message of 65535 bytes"),
    (b"\x03\x00\x02ab", "message kind 0x03 of 2 bytes"),
    (b"\x00\x00\x01x", "hangup message with 1 bytes"),
])
def test_framing_errors_name_the_rule(raw: bytes, what: str) -> None:
    with pytest.raises(AudioSocketError, match=what):
        AudioSocketParser().feed(raw)


def test_bad_dtmf_and_oversized_payload_are_refused() -> None:
    with pytest.raises(AudioSocketError, match="not a DTMF digit"):
        dtmf_message("x")
    with pytest.raises(AudioSocketError, match="16-bit length field"):
        AudioSocketMessage(KIND_AUDIO, bytes(70000)).serialize()


def test_header_is_big_endian_length() -> None:
    (msg,) = AudioSocketParser().feed(struct.pack("!BH", KIND_AUDIO, 4) + b"\x01\x00\xff\x7f")
    assert msg.payload == b"\x01\x00\xff\x7f"


@pytest.mark.parametrize(("reason", "q850", "expected"), [
    (5, 17, ("busy", "busy")),
    (1, 17, ("busy", "busy")),  # rejected with 486: reason "hung up", cause user busy
    (3, 16, ("no_answer", "no_answer")),  # rang out: the reason wins
    (1, 19, ("no_answer", "no_answer")),  # 480
    (1, 18, ("no_answer", "no_answer")),  # 408
    (1, 21, ("rejected", "declined")),  # 603
    (0, 1, ("failed", "not_found")),  # 404
    (8, 34, ("failed", "rejected")),  # 503: congestion, as the SIP table says
    (0, None, ("failed", "rejected")),
])
def test_asterisk_dispositions_use_the_sip_vocabulary(reason: int, q850: int | None,
                                                      expected: tuple[str, str]) -> None:
    assert asterisk_disposition(reason, q850) == expected


@pytest.mark.parametrize(("target", "exten"), [
    ("sip:agents@127.0.0.1:5090", "agents"),
    ("sips:1000@pbx;transport=tls", "1000"),
    ("tel:+8613800138000", "+8613800138000"),
    ("4000", "4000"),
    ("sip:@pbx", "s"),
    ("坐席", "s"),  # nothing a dialplan pattern matches: the s extension
])
def test_transfer_target_to_extension(target: str, exten: str) -> None:
    assert exten_of(target) == exten


def test_variables_are_escaped_for_asterisk_argument_parsing() -> None:
    assert variable_line("NAME", 'a,b "c" \\d 张三') == 'NAME=a\\,b \\"c\\" \\\\d 张三'
    with pytest.raises(ValueError, match="variables: 'BAD-NAME' is not a valid"):
        variable_line("BAD-NAME", "x")


def test_sip_headers_become_pjsip_header_variables() -> None:
    assert (header_line("P-Asserted-Identity", "<sip:+8695588@bank.example>")
            == "PJSIP_HEADER(add,P-Asserted-Identity)=<sip:+8695588@bank.example>")
    assert header_line("X-Campaign", 'a,b "c"') == 'PJSIP_HEADER(add,X-Campaign)=a\\,b \\"c\\"'
    for bad in ("Bad Header", "X-A)", "X:Y", ""):
        with pytest.raises(ValueError, match="headers: .* is not a SIP header name"):
            header_line(bad, "x")


def test_dialler_caller_id_and_call_ids() -> None:
    assert caller_id_of("95588", "招商银行") == '"招商银行" <95588>'
    assert caller_id_of("95588", None) == "95588"
    assert caller_id_of("1", 'a "b" \\') == '"a \\"b\\" \\\\" <1>'
    own = "6F9619FF-8B86-D011-B42D-00C04FC964FF"
    assert call_uuid(own) == own.lower()
    assert len(call_uuid(None)) == 36 and call_uuid(None) != call_uuid(None)
    with pytest.raises(ValueError, match="call_id: 'x' is not a UUID"):
        call_uuid("x")


def test_caller_number() -> None:
    assert caller_number('"张三" <10086>') == "10086"
    assert caller_number("95588") == "95588"
    assert caller_number(None) == ""
