"""The ``Call`` over the engine's own SIP/RTP stack; see :mod:`engine.sipcall.call`."""

from engine.sipcall.base import MediaCall
from engine.sipcall.call import SipCall, SpeechHooks
from engine.sipcall.indialog import sipfrag_status
from engine.sipcall.transfer import REFER_NOTIFY_WAIT_S

__all__ = ["REFER_NOTIFY_WAIT_S", "MediaCall", "SipCall", "SpeechHooks", "sipfrag_status"]
