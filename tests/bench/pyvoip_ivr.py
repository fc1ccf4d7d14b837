"""pyVoIP 1.6.8 as an answering IVR: the baseline the media benchmark compares the engine with.

Not a project dependency: install it only to run the baseline (``pip install pyVoIP==1.6.8``).
The same IVR as ``media_engine``: answer, write a 3 s 440 Hz prompt, then read digits until the
caller hangs up (pyVoIP 1.6.8 cannot send RFC 4733 digits, so none are sent back).

Why the patches: pyVoIP cannot act as a plain UAS. ``VoIPPhone.start()`` always REGISTERs and
sends every response to its configured server rather than to the request's source, so the
server/port are set to the calling SIPp's address and ``register`` is made a no-op. ``import
pyVoIP.VoIP`` must come before ``from pyVoIP import SIP`` (circular import otherwise).

Prints ``ready``; on SIGTERM prints one JSON line of counters and exits.

    python -m tests.bench.pyvoip_ivr SIP_PORT SIPP_PORT RTP_MIN RTP_MAX
"""

from __future__ import annotations

import json
import math
import os
import resource
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any

import pyVoIP.VoIP
from pyVoIP import SIP

PROMPT_S = 3.0
_lock = threading.Lock()
_counters = {"calls": 0, "digits_rx": 0, "digits_tx": 0}


def _prompt() -> bytes:
    """440 Hz, 8 kHz unsigned 8-bit PCM (pyVoIP's audio API format)."""
    n = int(8000 * PROMPT_S)
    return bytes(int(128 + 100 * math.sin(2 * math.pi * 440 * i / 8000)) for i in range(n))


PROMPT = _prompt()


def on_call(call: Any) -> None:
    """pyVoIP runs this in a thread per call (a ``Timer(1, ...)`` after the INVITE)."""
    with _lock:
        _counters["calls"] += 1
    try:
        call.answer()
        call.write_audio(PROMPT)
        while call.state == pyVoIP.VoIP.CallState.ANSWERED:
            d = call.get_dtmf()
            if d:
                with _lock:
                    _counters["digits_rx"] += len(d)
            time.sleep(0.05)
    except pyVoIP.VoIP.InvalidStateError:
        pass


def main(sip_port: int, sipp_port: int, rtp_min: int, rtp_max: int) -> None:
    SIP.SIPClient.register = lambda self: True  # type: ignore[method-assign]
    phone = pyVoIP.VoIP.VoIPPhone("127.0.0.1", sipp_port, "ivr", "x", myIP="127.0.0.1",
                                  callCallback=on_call, sipPort=sip_port, rtpPortLow=rtp_min,
                                  rtpPortHigh=rtp_max)
    phone.start()
    print("ready", flush=True)
    done = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, stop)
    done.wait()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    with _lock:
        out = dict(_counters)
    out.update(cpu_s=ru.ru_utime + ru.ru_stime, maxrss_mb=ru.ru_maxrss / 1024)
    print(json.dumps(out), flush=True)
    os._exit(0)


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:5]))
