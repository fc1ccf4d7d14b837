"""SMPP 3.4 PDUs: byte-exact against an independent encoder (the smpp34 package's Rust codec),
round trips, and one negative test per way a PDU can be cut short or overlong."""

from __future__ import annotations

import struct

import pytest
import smpp34

from notify.smpp.pdu import (
    BIND_TRANSCEIVER,
    ESME_RTHROTTLED,
    BindTransceiver,
    BindTransceiverResp,
    DeliverSm,
    EnquireLink,
    GenericNack,
    PduReader,
    RawPdu,
    SmppDecodeError,
    SubmitSm,
    SubmitSmResp,
    Unbind,
    parse,
)


def _submit() -> SubmitSm:
    return SubmitSm(sequence_number=7, source_addr_ton=5, source_addr="IVR",
                    dest_addr_ton=1, dest_addr_npi=1, destination_addr="8613800138000",
                    esm_class=0x40, registered_delivery=1, data_coding=8,
                    short_message=bytes((5, 0, 3, 9, 2, 1)) + "退订回T".encode("utf-16-be"))


def test_submit_sm_is_byte_exact_with_smpp34() -> None:
    ours = _submit()
    theirs = smpp34.SubmitSm("IVR", "8613800138000", ours.short_message, source_addr_ton=5,
                             dest_addr_ton=1, dest_addr_npi=1, esm_class=0x40,
                             registered_delivery=1, data_coding=8, sequence_number=7)
    assert ours.serialize() == theirs.encode()


def test_smpp34_reads_what_we_write() -> None:
    decoded = smpp34.decode(_submit().serialize())
    assert isinstance(decoded, smpp34.SubmitSm)
    assert decoded.destination_addr == "8613800138000" and decoded.esm_class == 0x40
    assert decoded.short_message.endswith("退订回T".encode("utf-16-be"))


def test_we_read_a_deliver_sm_receipt_written_by_smpp34() -> None:
    raw = smpp34.DeliverSm("8613800138000", "IVR", b"id:3e8 sub:001 dlvrd:001 stat:DELIVRD",
                           esm_class=4, sequence_number=99,
                           tlvs=[smpp34.Tlv(0x001E, b"3e8\x00"), smpp34.Tlv(0x0427, b"\x02")]
                           ).encode()
    pdu = parse(raw)
    assert isinstance(pdu, DeliverSm) and pdu.is_receipt and pdu.sequence_number == 99
    assert pdu.tlvs == {0x001E: b"3e8\x00", 0x0427: b"\x02"}
    assert pdu.serialize() == raw


@pytest.mark.parametrize("pdu", [
    _submit(), BindTransceiver(3, 0, "ivr", "secret", "sms"), BindTransceiverResp(3, 0, "smsc"),
    SubmitSmResp(7, 0, "msg-1"), SubmitSmResp(8, ESME_RTHROTTLED), EnquireLink(4),
    Unbind(5), GenericNack(6, 3), DeliverSm(9, 0, short_message=b"TD"),
])
def test_round_trip(pdu: object) -> None:
    raw = pdu.serialize()  # type: ignore[attr-defined]
    assert parse(raw) == pdu
    assert parse(raw).serialize() == raw


def test_bind_transceiver_layout() -> None:
    raw = BindTransceiver(1, 0, "ab", "pw").serialize()
    assert struct.unpack("!IIII", raw[:16]) == (len(raw), BIND_TRANSCEIVER, 0, 1)
    assert raw[16:] == b"ab\x00pw\x00\x00\x34\x00\x00\x00"


def test_unknown_command_is_kept_raw() -> None:
    raw = struct.pack("!IIII", 20, 0x00000103, 0, 5) + b"abcd"  # data_sm
    pdu = parse(raw)
    assert isinstance(pdu, RawPdu) and pdu.raw_command_id == 0x103 and pdu.serialize() == raw


def _cut(raw: bytes, n: int) -> bytes:
    """The first ``n`` octets with command_length fixed up (a body cut short)."""
    return struct.pack("!I", n) + raw[4:n]


@pytest.mark.parametrize("n", [17, 20, 40, 45, 50, 60])
def test_truncated_submit_sm_names_the_field(n: int) -> None:
    with pytest.raises(SmppDecodeError, match=r"submit_sm\.\w+"):
        parse(_cut(_submit().serialize(), n))


def test_sm_length_past_the_end_is_refused() -> None:
    raw = bytearray(_submit().serialize())
    raw = raw[:-4]
    raw[0:4] = struct.pack("!I", len(raw))
    with pytest.raises(SmppDecodeError, match="short_message"):
        parse(bytes(raw))


def test_overlong_c_octet_string_is_refused() -> None:
    body = b"x" * 20 + b"\x00pw\x00\x00\x34\x00\x00\x00"
    raw = struct.pack("!IIII", 16 + len(body), BIND_TRANSCEIVER, 0, 1) + body
    with pytest.raises(SmppDecodeError, match="system_id"):
        parse(raw)


def test_length_mismatch_and_short_header() -> None:
    with pytest.raises(SmppDecodeError, match="command_length"):
        parse(EnquireLink(1).serialize() + b"\x00")
    with pytest.raises(SmppDecodeError, match="header"):
        parse(b"\x00\x00\x00\x10")


def test_reader_cuts_a_stream_fed_one_octet_at_a_time() -> None:
    stream = (_submit().serialize() + EnquireLink(2).serialize()
              + SubmitSmResp(3, 0, "m").serialize())
    reader = PduReader()
    frames = [f for b in stream for f in reader.feed(bytes([b]))]
    assert [parse(f).sequence_number for f in frames] == [7, 2, 3]


@pytest.mark.parametrize("length", [0, 15, 1 << 20])
def test_reader_refuses_impossible_lengths(length: int) -> None:
    with pytest.raises(SmppDecodeError, match="command_length"):
        PduReader().feed(struct.pack("!I", length) + b"\x00" * 12)


def test_field_too_long_to_write_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="destination_addr"):
        SubmitSm(destination_addr="1" * 21).serialize()
    with pytest.raises(ValueError, match="short_message"):
        SubmitSm(short_message=b"x" * 255).serialize()
