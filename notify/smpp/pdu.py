"""SMPP 3.4 PDUs, sans-IO: bytes in, typed PDUs out, and back, byte for byte.

Only what an ESME that submits messages and takes receipts needs (bind_transceiver, submit_sm,
deliver_sm, enquire_link, unbind, generic_nack and their responses); any other command decodes
to :class:`RawPdu` so the session can answer it with generic_nack rather than choke. Every field
is checked against its SMPP 3.4 size (C-Octet strings include their NUL), and a bad PDU raises
:class:`SmppDecodeError` naming the field, never an ``IndexError``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import ClassVar

HEADER_OCTETS = 16
MAX_PDU_OCTETS = 65_536  # far above any real PDU (a submit_sm with payload is < 70 KB)

GENERIC_NACK = 0x80000000
BIND_RECEIVER = 0x00000001
BIND_TRANSMITTER = 0x00000002
SUBMIT_SM = 0x00000004
SUBMIT_SM_RESP = 0x80000004
DELIVER_SM = 0x00000005
DELIVER_SM_RESP = 0x80000005
UNBIND = 0x00000006
UNBIND_RESP = 0x80000006
BIND_TRANSCEIVER = 0x00000009
BIND_TRANSCEIVER_RESP = 0x80000009
ENQUIRE_LINK = 0x00000015
ENQUIRE_LINK_RESP = 0x80000015
RESPONSE_BIT = 0x80000000

# command_status values (SMPP 3.4 5.1.3) the client acts on
ESME_ROK = 0x00
ESME_RINVMSGLEN = 0x01
ESME_RINVCMDLEN = 0x02
ESME_RINVCMDID = 0x03
ESME_RINVBNDSTS = 0x04
ESME_RALYBND = 0x05
ESME_RSYSERR = 0x08
ESME_RINVDSTADR = 0x0B
ESME_RBINDFAIL = 0x0D
ESME_RINVPASWD = 0x0E
ESME_RINVSYSID = 0x0F
ESME_RMSGQFUL = 0x14
ESME_RTHROTTLED = 0x58
ESME_RUNKNOWNERR = 0xFF
INTERFACE_VERSION_34 = 0x34

ESM_CLASS_UDHI = 0x40  # short_message starts with a user data header
ESM_CLASS_RECEIPT = 0x04  # deliver_sm carries an SMSC delivery receipt
REGISTERED_DELIVERY_FINAL = 0x01  # ask for a receipt on final success or failure

TLV_SAR_MSG_REF_NUM = 0x020C
TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_MESSAGE_STATE = 0x0427
TLV_MESSAGE_PAYLOAD = 0x0424
TLV_SC_INTERFACE_VERSION = 0x0210


class SmppDecodeError(ValueError):
    """A PDU that breaks SMPP 3.4; the message names the field. ``status`` is what a
    generic_nack should carry."""

    def __init__(self, message: str, status: int = ESME_RINVCMDLEN) -> None:
        super().__init__(message)
        self.status = status


class _Reader:
    __slots__ = ("data", "pos", "what")

    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.pos, self.what = data, 0, what

    def octet(self, name: str) -> int:
        if self.pos >= len(self.data):
            raise SmppDecodeError(f"{self.what}.{name}: PDU ends early", ESME_RINVMSGLEN)
        value = self.data[self.pos]
        self.pos += 1
        return value

    def cstring(self, name: str, max_octets: int) -> str:
        end = self.data.find(b"\x00", self.pos)
        if end < 0:
            raise SmppDecodeError(f"{self.what}.{name}: no NUL terminator", ESME_RINVMSGLEN)
        if end - self.pos + 1 > max_octets:
            raise SmppDecodeError(
                f"{self.what}.{name}: {end - self.pos + 1} octets, more than {max_octets}")
        value = self.data[self.pos:end].decode("latin-1")
        self.pos = end + 1
        return value

    def octets(self, name: str, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise SmppDecodeError(f"{self.what}.{name}: {n} octets announced, "
                                  f"{len(self.data) - self.pos} left", ESME_RINVMSGLEN)
        value = self.data[self.pos:self.pos + n]
        self.pos += n
        return value

    def tlvs(self) -> dict[int, bytes]:
        out: dict[int, bytes] = {}
        while self.pos < len(self.data):
            head = self.octets("tlv", 4)
            tag, length = struct.unpack("!HH", head)
            out[tag] = self.octets(f"tlv 0x{tag:04x}", length)
        return out


def _cstring(value: str, name: str, max_octets: int) -> bytes:
    raw = value.encode("latin-1")
    if len(raw) + 1 > max_octets or b"\x00" in raw:
        raise ValueError(f"{name}: {value!r} does not fit {max_octets - 1} octets")
    return raw + b"\x00"


def _tlvs(tlvs: dict[int, bytes]) -> bytes:
    return b"".join(struct.pack("!HH", tag, len(v)) + v for tag, v in tlvs.items())


@dataclass(slots=True)
class Pdu:
    """Header fields every PDU has; subclasses add their body."""

    command_id: ClassVar[int] = 0
    sequence_number: int = 0
    command_status: int = ESME_ROK

    def body(self) -> bytes:
        return b""

    def serialize(self) -> bytes:
        body = self.body()
        return struct.pack("!IIII", HEADER_OCTETS + len(body), self.command_id,
                           self.command_status, self.sequence_number) + body

    @classmethod
    def parse_body(cls, seq: int, status: int, body: bytes) -> Pdu:
        return cls(seq, status)  # bodiless PDUs; trailing octets (padding) are ignored


@dataclass(slots=True)
class BindTransceiver(Pdu):
    command_id: ClassVar[int] = BIND_TRANSCEIVER
    system_id: str = ""
    password: str = ""
    system_type: str = ""
    interface_version: int = INTERFACE_VERSION_34
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""

    def body(self) -> bytes:
        return (_cstring(self.system_id, "system_id", 16) + _cstring(self.password, "password", 9)
                + _cstring(self.system_type, "system_type", 13)
                + bytes((self.interface_version, self.addr_ton, self.addr_npi))
                + _cstring(self.address_range, "address_range", 41))

    @classmethod
    def parse_body(cls, seq: int, status: int, body: bytes) -> Pdu:
        r = _Reader(body, "bind")
        return cls(seq, status, r.cstring("system_id", 16), r.cstring("password", 9),
                   r.cstring("system_type", 13), r.octet("interface_version"),
                   r.octet("addr_ton"), r.octet("addr_npi"), r.cstring("address_range", 41))


@dataclass(slots=True)
class BindTransceiverResp(Pdu):
    command_id: ClassVar[int] = BIND_TRANSCEIVER_RESP
    system_id: str = ""
    tlvs: dict[int, bytes] = field(default_factory=dict)

    def body(self) -> bytes:
        return _cstring(self.system_id, "system_id", 16) + _tlvs(self.tlvs)

    @classmethod
    def parse_body(cls, seq: int, status: int, body: bytes) -> Pdu:
        if not body:  # an error response may carry no body (5.1.3)
            return cls(seq, status)
        r = _Reader(body, "bind_transceiver_resp")
        return cls(seq, status, r.cstring("system_id", 16), r.tlvs())


@dataclass(slots=True)
class ShortMessage(Pdu):
    """submit_sm and deliver_sm share one body layout (SMPP 3.4 4.4.1 / 4.6.1)."""

    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present_flag: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""
    tlvs: dict[int, bytes] = field(default_factory=dict)

    def body(self) -> bytes:
        if len(self.short_message) > 254:
            raise ValueError(f"short_message: {len(self.short_message)} octets, more than 254")
        return (_cstring(self.service_type, "service_type", 6)
                + bytes((self.source_addr_ton, self.source_addr_npi))
                + _cstring(self.source_addr, "source_addr", 21)
                + bytes((self.dest_addr_ton, self.dest_addr_npi))
                + _cstring(self.destination_addr, "destination_addr", 21)
                + bytes((self.esm_class, self.protocol_id, self.priority_flag))
                + _cstring(self.schedule_delivery_time, "schedule_delivery_time", 17)
                + _cstring(self.validity_period, "validity_period", 17)
                + bytes((self.registered_delivery, self.replace_if_present_flag,
                         self.data_coding, self.sm_default_msg_id, len(self.short_message)))
                + self.short_message + _tlvs(self.tlvs))

    @classmethod
    def parse_body(cls, seq: int, status: int, body: bytes) -> Pdu:
        r = _Reader(body, "submit_sm" if cls.command_id == SUBMIT_SM else "deliver_sm")
        pdu = cls(seq, status, r.cstring("service_type", 6), r.octet("source_addr_ton"),
                  r.octet("source_addr_npi"), r.cstring("source_addr", 21),
                  r.octet("dest_addr_ton"), r.octet("dest_addr_npi"),
                  r.cstring("destination_addr", 21), r.octet("esm_class"),
                  r.octet("protocol_id"), r.octet("priority_flag"),
                  r.cstring("schedule_delivery_time", 17), r.cstring("validity_period", 17),
                  r.octet("registered_delivery"), r.octet("replace_if_present_flag"),
                  r.octet("data_coding"), r.octet("sm_default_msg_id"))
        pdu.short_message = r.octets("short_message", r.octet("sm_length"))
        pdu.tlvs = r.tlvs()
        return pdu


@dataclass(slots=True)
class SubmitSm(ShortMessage):
    command_id: ClassVar[int] = SUBMIT_SM


@dataclass(slots=True)
class DeliverSm(ShortMessage):
    command_id: ClassVar[int] = DELIVER_SM

    @property
    def is_receipt(self) -> bool:
        return bool(self.esm_class & ESM_CLASS_RECEIPT)


@dataclass(slots=True)
class MessageIdResp(Pdu):
    message_id: str = ""

    def body(self) -> bytes:
        return _cstring(self.message_id, "message_id", 65)

    @classmethod
    def parse_body(cls, seq: int, status: int, body: bytes) -> Pdu:
        if not body:  # 5.1.3: an error response carries no body
            return cls(seq, status)
        return cls(seq, status, _Reader(body, "resp").cstring("message_id", 65))


@dataclass(slots=True)
class SubmitSmResp(MessageIdResp):
    command_id: ClassVar[int] = SUBMIT_SM_RESP


@dataclass(slots=True)
class DeliverSmResp(MessageIdResp):
    command_id: ClassVar[int] = DELIVER_SM_RESP


@dataclass(slots=True)
class EnquireLink(Pdu):
    command_id: ClassVar[int] = ENQUIRE_LINK


@dataclass(slots=True)
class EnquireLinkResp(Pdu):
    command_id: ClassVar[int] = ENQUIRE_LINK_RESP


@dataclass(slots=True)
class Unbind(Pdu):
    command_id: ClassVar[int] = UNBIND


@dataclass(slots=True)
class UnbindResp(Pdu):
    command_id: ClassVar[int] = UNBIND_RESP


@dataclass(slots=True)
class GenericNack(Pdu):
    command_id: ClassVar[int] = GENERIC_NACK


@dataclass(slots=True)
class RawPdu(Pdu):
    """A command this client does not implement (answered with generic_nack)."""

    raw_command_id: int = 0
    raw_body: bytes = b""

    def serialize(self) -> bytes:
        return struct.pack("!IIII", HEADER_OCTETS + len(self.raw_body), self.raw_command_id,
                           self.command_status, self.sequence_number) + self.raw_body


PDU_TYPES: dict[int, type[Pdu]] = {
    cls.command_id: cls for cls in (
        BindTransceiver, BindTransceiverResp, SubmitSm, SubmitSmResp, DeliverSm, DeliverSmResp,
        EnquireLink, EnquireLinkResp, Unbind, UnbindResp, GenericNack)
}


def parse(data: bytes) -> Pdu:
    """One complete PDU (``len(data)`` must equal its command_length)."""
    if len(data) < HEADER_OCTETS:
        raise SmppDecodeError(f"header: {len(data)} octets, a PDU has at least {HEADER_OCTETS}")
    length, command_id, status, seq = struct.unpack("!IIII", data[:HEADER_OCTETS])
    if length != len(data):
        raise SmppDecodeError(f"command_length: says {length}, PDU has {len(data)} octets")
    cls = PDU_TYPES.get(command_id)
    if cls is None:
        return RawPdu(seq, status, command_id, data[HEADER_OCTETS:])
    return cls.parse_body(seq, status, data[HEADER_OCTETS:])


class PduReader:
    """Cuts a TCP byte stream into PDUs. A length outside [16, MAX_PDU_OCTETS] cannot be
    resynchronised: :class:`SmppDecodeError`, and the session closes the connection."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        while len(self._buf) >= 4:
            (length,) = struct.unpack_from("!I", self._buf)
            if not HEADER_OCTETS <= length <= MAX_PDU_OCTETS:
                raise SmppDecodeError(f"command_length: {length} is outside "
                                      f"{HEADER_OCTETS}..{MAX_PDU_OCTETS}")
            if len(self._buf) < length:
                break
            out.append(bytes(self._buf[:length]))
            del self._buf[:length]
        return out


def response_for(pdu: Pdu) -> int:
    return pdu.command_id | RESPONSE_BIT
