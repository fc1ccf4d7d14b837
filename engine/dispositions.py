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
