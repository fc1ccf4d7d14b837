"""Which RTP packets belong to the call: the source address and SSRC lock ("strict RTP").

Without it, any host that guesses a media port can inject audio into a call, type digits for
the caller, or (with symmetric RTP) move the engine's outgoing audio to itself with one packet.
The rules, after Asterisk's ``strictrtp`` and RFC 3550 §8:

* **Learning.** The first packet from an allowed host latches the source (address and port):
  the SDP's connection address, or the address the call's signalling came from (a caller behind
  NAT sends RTP from the public address its SIP came from, often from another port). After that,
  packets from any other address or port are dropped and counted. A re-INVITE (new SDP) starts
  learning again.
* **SSRC.** The first SSRC from the latched source is locked. Another SSRC is accepted only as a
  real change of source (RFC 3550 §8.2: a new SSRC is a new participant): when the locked one
  has been silent for ``SSRC_SILENCE_S`` and the new one has arrived twice in sequence (the
  probation of RFC 3550 A.1). Telephone-events are locked on their own SSRC (most phones use the
  audio's; some do not), under the same address rule.

Pure: time is passed in; nothing here touches a socket.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

SSRC_SILENCE_S = 0.06  # three 20 ms packets without the locked SSRC before another may take over
PROBATION_PACKETS = 2  # RFC 3550 A.1 MIN_SEQUENTIAL


class Verdict(enum.Enum):
    ACCEPT = "accept"
    LATCHED = "latched"  # accepted, and the source was learnt from this packet
    SSRC_CHANGED = "ssrc_changed"  # accepted: the source switched to a new SSRC
    FOREIGN_SOURCE = "foreign_source"  # dropped: another address or port
    FOREIGN_SSRC = "foreign_ssrc"  # dropped: another SSRC while the locked one is alive

    @property
    def accepted(self) -> bool:
        return self in (Verdict.ACCEPT, Verdict.LATCHED, Verdict.SSRC_CHANGED)


@dataclass
class _SsrcLock:
    ssrc: int | None = None
    last_seen: float = 0.0
    candidate: int | None = None
    candidate_seq: int = 0
    candidate_count: int = 0

    def check(self, ssrc: int, seq: int, now: float) -> Verdict:
        if self.ssrc is None or ssrc == self.ssrc:
            self.ssrc = ssrc
            self.last_seen = now
            self.candidate = None
            return Verdict.ACCEPT
        if ssrc == self.candidate and seq == (self.candidate_seq + 1) & 0xFFFF:
            self.candidate_count += 1
        else:
            self.candidate, self.candidate_count = ssrc, 1
        self.candidate_seq = seq
        if self.candidate_count >= PROBATION_PACKETS and now - self.last_seen >= SSRC_SILENCE_S:
            self.ssrc, self.last_seen, self.candidate = ssrc, now, None
            return Verdict.SSRC_CHANGED
        return Verdict.FOREIGN_SSRC


@dataclass
class SourceGuard:
    """See the module docstring. ``allowed_hosts`` None: any host may be learnt (the lenient
    ``rtp.strict_source = false`` mode for media relays that send from unrelated addresses)."""

    allowed_hosts: frozenset[str] | None
    source: tuple[str, int] | None = None
    _audio: _SsrcLock = field(default_factory=_SsrcLock)
    _events: _SsrcLock = field(default_factory=_SsrcLock)

    def relearn(self, allowed_hosts: frozenset[str] | None) -> None:
        """New SDP from the far end (re-INVITE): learn the source again."""
        self.allowed_hosts = allowed_hosts
        self.source = None
        self._audio = _SsrcLock()
        self._events = _SsrcLock()

    @property
    def audio_ssrc(self) -> int | None:
        return self._audio.ssrc

    def is_locked_audio(self, addr: tuple[str, int], ssrc: int, now: float) -> bool:
        """The common case in one step: a packet from the latched source with the locked audio
        SSRC. True means accepted (exactly what :meth:`check` would say, with the same effect
        on the lock); False means nothing changed and :meth:`check` must decide."""
        lock = self._audio
        if ssrc != lock.ssrc or addr != self.source:
            return False
        lock.last_seen = now
        lock.candidate = None
        return True

    def check(self, addr: tuple[str, int], ssrc: int, seq: int, now: float, *,
              event: bool = False) -> Verdict:
        latched = False
        if self.source is None:
            if self.allowed_hosts is not None and addr[0] not in self.allowed_hosts:
                return Verdict.FOREIGN_SOURCE
            self.source = addr
            latched = True
        elif addr != self.source:
            return Verdict.FOREIGN_SOURCE
        verdict = (self._events if event else self._audio).check(ssrc, seq, now)
        if latched and verdict is Verdict.ACCEPT:
            return Verdict.LATCHED
        return verdict
