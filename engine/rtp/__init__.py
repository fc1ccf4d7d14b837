"""Sans-IO media layer: RTP/RTCP codecs, stream state, jitter buffer, RFC 4733 DTMF, pacing.

Everything here is pure (bytes and ``now`` in, values out) except :mod:`engine.rtp.pacer`, whose
``run`` loop is the one asyncio clock that drives every call's sending.
"""
