"""How an outbound call that was never answered is recorded: one vocabulary for every backend.

Campaigns retry per disposition (busy later, no answer later, failed maybe never), so the
mapping from what the far end said to a disposition is one table, kept here:

=================================  ================  ======================================
far end                            cause             disposition
=================================  ================  ======================================
486 Busy Here, 600 Busy Everywhere  ``busy``          ``busy``
408, 480, rang out (we CANCEL)     ``no_answer``     ``no_answer``
603 Decline                        ``declined``      ``rejected``
404, 604                           ``not_found``     ``failed``
other 4xx-6xx (e.g. 503)           ``rejected``      ``failed``
no response at all (Timer B)       ``timeout``       ``failed``
unresolvable or unreachable        ``network_error``  ``failed``
caller gave up (bridge leg)        ``abandoned``     ``no_answer``
=================================  ================  ======================================

Calls placed through Asterisk (``engine.ami``) end with an ``OriginateResponse`` reason and the
channel's Q.850 hang-up cause instead of a SIP status; :func:`asterisk_disposition` maps them
onto the same causes (Asterisk's PJSIP turns 486 into 17, 408 into 18, 480 into 19, 603 into
21, 404 into 1, 503 into 34): a campaign retries a busy line the same way whichever backend
dialled it, and the cause words are the SIP table's.

=================================  ================  ======================================
Asterisk                           cause             disposition
=================================  ================  ======================================
reason 5, Q.850 17 (user busy)     ``busy``          ``busy``
reason 3 (rang out), Q.850 18, 19  ``no_answer``     ``no_answer``
Q.850 21 (call rejected)           ``declined``      ``rejected``
Q.850 1, 3 (unallocated, no route)  ``not_found``     ``failed``
any other (34 congestion: 503...)  ``rejected``      ``failed``
=================================  ================  ======================================
"""

from __future__ import annotations

from engine.sip.invite import OutgoingInvite

CAUSE_TO_DISPOSITION = {
    "busy": "busy",
    "no_answer": "no_answer",
    "cancelled": "no_answer",  # we cancelled it after the ring timeout
    "declined": "rejected",
    "not_found": "failed",
    "rejected": "failed",
    "timeout": "failed",
}


def outbound_disposition(session: OutgoingInvite) -> str:
    if not session.ended.done():  # CANCEL sent after the ring timeout; its 487 is on the way
        return "no_answer"
    return CAUSE_TO_DISPOSITION.get(session.ended.result().cause, "failed")


Q850_TO_CAUSE = {
    1: "not_found",  # unallocated number (404, 604)
    3: "not_found",  # no route to destination
    17: "busy",  # user busy (486, 600)
    18: "no_answer",  # no user responding (408)
    19: "no_answer",  # no answer from user (480, rang out)
    20: "no_answer",  # subscriber absent
    21: "declined",  # call rejected (603)
}
ORIGINATE_REASON_TO_CAUSE = {3: "no_answer", 5: "busy"}


def asterisk_disposition(reason: int | None, q850: int | None) -> tuple[str, str]:
    """(disposition, cause) of an Originate that was not answered, from the
    ``OriginateResponse`` reason (an AST_CONTROL code) and the channel's Q.850 cause. The
    reason wins when it is specific (rang out, busy); else the cause decides."""
    cause = ORIGINATE_REASON_TO_CAUSE.get(reason or -1)
    if cause is None:
        cause = Q850_TO_CAUSE.get(q850 or -1, "rejected")
    return CAUSE_TO_DISPOSITION.get(cause, "failed"), cause
