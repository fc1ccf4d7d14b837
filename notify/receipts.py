"""Delivery receipts from either gateway, reduced to one vocabulary.

SMPP receipts are deliver_sm with ``esm_class`` 0x04 whose text follows SMPP 3.4 Appendix B
(``id:... sub:001 dlvrd:001 submit date:... done date:... stat:DELIVRD err:000 text:...``);
the ``receipted_message_id`` and ``message_state`` TLVs, when present, win over the text.
Kannel calls the dlr-url with a type bit (1 delivered, 2 undelivered, 4 queued on the SMSC,
8 accepted by the SMSC, 16 rejected by the SMSC) and the SMSC's text (``%A``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from notify.smpp.pdu import TLV_MESSAGE_STATE, TLV_RECEIPTED_MESSAGE_ID, DeliverSm

Outcome = Literal["delivered", "failed", "expired", "pending"]

# SMPP 3.4 5.2.28 message_state values and Appendix B stat words
_STATE_BY_CODE = {1: "ENROUTE", 2: "DELIVRD", 3: "EXPIRED", 4: "DELETED", 5: "UNDELIV",
                  6: "ACCEPTD", 7: "UNKNOWN", 8: "REJECTD"}
STAT_OUTCOME: dict[str, Outcome] = {
    "DELIVRD": "delivered", "EXPIRED": "expired", "DELETED": "failed", "UNDELIV": "failed",
    "REJECTD": "failed", "ACCEPTD": "pending", "ENROUTE": "pending", "UNKNOWN": "pending",
}
KANNEL_DELIVERED = 1
KANNEL_UNDELIVERED = 2
KANNEL_SMSC_QUEUED = 4
KANNEL_SMSC_ACCEPTED = 8
KANNEL_SMSC_REJECTED = 16
KANNEL_DLR_MASK = 31  # ask Kannel for every kind of report
# a receipt that names our message rather than an SMSC id (Kannel's dlr-url carries it)
MESSAGE_RECEIPT_PREFIX = "msg:"

_FIELD_RE = re.compile(r"(id|stat|err|sub|dlvrd):\s*(\S+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Receipt:
    gateway_message_id: str
    stat: str  # DELIVRD, UNDELIV, ... as the SMSC said it
    outcome: Outcome
    error: str = ""


def _outcome(stat: str) -> Outcome:
    return STAT_OUTCOME.get(stat.upper()[:7], "pending")


def parse_receipt_text(text: str) -> tuple[str, str, str]:
    """``(id, stat, err)`` from an Appendix B receipt text (missing fields are empty)."""
    found = {k.lower(): v for k, v in _FIELD_RE.findall(text)}
    return found.get("id", ""), found.get("stat", "").upper(), found.get("err", "")


def smpp_receipt(pdu: DeliverSm, text: str) -> Receipt | None:
    """The receipt a deliver_sm carries, or None when it is a reply from a handset."""
    if not pdu.is_receipt:
        return None
    msg_id, stat, err = parse_receipt_text(text)
    tlv_id = pdu.tlvs.get(TLV_RECEIPTED_MESSAGE_ID)
    if tlv_id:
        msg_id = tlv_id.rstrip(b"\x00").decode("latin-1")
    state = pdu.tlvs.get(TLV_MESSAGE_STATE)
    if state and state[0] in _STATE_BY_CODE:
        stat = _STATE_BY_CODE[state[0]]
    if not msg_id:
        return None
    return Receipt(msg_id, stat or "UNKNOWN", _outcome(stat), err)


def kannel_receipt(dlr_type: int, text: str, gateway_message_id: str = "") -> Receipt:
    """A Kannel dlr-url call: its type bit decides, the text's ``stat:`` refines (EXPIRED)."""
    _, stat, err = parse_receipt_text(text)
    outcome: Outcome
    if dlr_type & KANNEL_DELIVERED:
        outcome, stat = "delivered", stat or "DELIVRD"
    elif dlr_type & (KANNEL_UNDELIVERED | KANNEL_SMSC_REJECTED):
        outcome = "expired" if stat == "EXPIRED" else "failed"
        stat = stat or ("REJECTD" if dlr_type & KANNEL_SMSC_REJECTED else "UNDELIV")
    else:
        outcome, stat = "pending", stat or ("ACCEPTD" if dlr_type & KANNEL_SMSC_ACCEPTED
                                            else "ENROUTE")
    return Receipt(gateway_message_id, stat, outcome, err)
