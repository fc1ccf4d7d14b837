"""The RTP source and SSRC lock (engine/rtp/source.py): who may latch, what is dropped after,
and when a new SSRC is a real change of source (RFC 3550 §8.2, A.1 probation)."""

from __future__ import annotations

from engine.rtp.source import SSRC_SILENCE_S, SourceGuard, Verdict

CALLER = ("203.0.113.5", 40000)
ALLOWED = frozenset({"203.0.113.5", "198.51.100.7"})  # SDP address, signalling address


def test_the_first_packet_from_an_allowed_host_latches() -> None:
    g = SourceGuard(ALLOWED)
    assert g.check(("192.0.2.66", 40000), 1, 10, 0.0) is Verdict.FOREIGN_SOURCE  # not allowed
    assert g.source is None
    assert g.check(CALLER, 1, 10, 0.0) is Verdict.LATCHED
    assert g.check(CALLER, 1, 11, 0.02) is Verdict.ACCEPT


def test_nat_a_signalling_address_may_latch_from_another_port() -> None:
    g = SourceGuard(ALLOWED)
    assert g.check(("198.51.100.7", 61234), 9, 1, 0.0) is Verdict.LATCHED
    assert g.source == ("198.51.100.7", 61234)


def test_after_latching_other_ports_and_hosts_are_dropped() -> None:
    g = SourceGuard(ALLOWED)
    g.check(CALLER, 1, 10, 0.0)
    assert g.check((CALLER[0], 40002), 1, 11, 0.02) is Verdict.FOREIGN_SOURCE  # third port
    assert g.check(("198.51.100.7", 40000), 1, 11, 0.02) is Verdict.FOREIGN_SOURCE
    assert g.check(CALLER, 1, 11, 0.02) is Verdict.ACCEPT


def test_another_ssrc_is_refused_while_the_locked_one_talks() -> None:
    g = SourceGuard(ALLOWED)
    g.check(CALLER, 1, 10, 0.0)
    for i in range(5):  # a spoofer on the same 5-tuple, in sequence, interleaved with the caller
        assert g.check(CALLER, 0xBAD, 500 + i, 0.01 + i * 0.02) is Verdict.FOREIGN_SSRC
        assert g.check(CALLER, 1, 11 + i, 0.02 + i * 0.02) is Verdict.ACCEPT


def test_a_real_ssrc_change_is_followed() -> None:
    g = SourceGuard(ALLOWED)
    g.check(CALLER, 1, 10, 0.0)
    t = SSRC_SILENCE_S + 0.01  # the old source went quiet
    assert g.check(CALLER, 2, 700, t) is Verdict.FOREIGN_SSRC  # probation: one packet
    assert g.check(CALLER, 2, 701, t + 0.02) is Verdict.SSRC_CHANGED  # two in sequence
    assert g.check(CALLER, 2, 702, t + 0.04) is Verdict.ACCEPT
    assert g.check(CALLER, 1, 12, t + 0.05) is Verdict.FOREIGN_SSRC  # and the old one is out


def test_out_of_sequence_candidates_never_pass_probation() -> None:
    g = SourceGuard(ALLOWED)
    g.check(CALLER, 1, 10, 0.0)
    for i, seq in enumerate([100, 300, 200, 900]):
        assert g.check(CALLER, 2, seq, 1.0 + i) is Verdict.FOREIGN_SSRC


def test_events_have_their_own_ssrc_lock_under_the_same_address_rule() -> None:
    g = SourceGuard(ALLOWED)
    g.check(CALLER, 1, 10, 0.0)
    assert g.check(CALLER, 77, 11, 0.02, event=True) is Verdict.ACCEPT
    assert g.check(CALLER, 78, 12, 0.03, event=True) is Verdict.FOREIGN_SSRC
    assert g.check((CALLER[0], 9), 77, 13, 0.04, event=True) is Verdict.FOREIGN_SOURCE


def test_reinvite_learns_again() -> None:
    g = SourceGuard(ALLOWED)
    g.check(CALLER, 1, 10, 0.0)
    g.relearn(frozenset({"192.0.2.10"}))
    assert g.check(CALLER, 1, 11, 0.02) is Verdict.FOREIGN_SOURCE
    assert g.check(("192.0.2.10", 5000), 3, 1, 0.04) is Verdict.LATCHED


def test_lenient_mode_learns_from_anyone_but_still_locks() -> None:
    g = SourceGuard(None)
    assert g.check(("192.0.2.66", 1), 1, 1, 0.0) is Verdict.LATCHED
    assert g.check(CALLER, 1, 2, 0.02) is Verdict.FOREIGN_SOURCE
