"""Which backend places campaign calls (``[campaigns] backend``): the engine's own SIP stack
or the Asterisk backend's AMI Originate; none when the one asked for is not running."""

from __future__ import annotations

from typing import Any

from app.campaign_setup import campaign_dialler
from campaigns.dialler import ControllerDialler
from engine.ami.dialler import AsteriskDialler

SIP: Any = object()  # stand-ins: the chooser only hands them to the dialler it builds
ASTERISK: Any = object()


def test_auto_prefers_the_own_sip_stack_then_asterisk() -> None:
    both = campaign_dialler("auto", SIP, ASTERISK)
    assert isinstance(both, ControllerDialler) and both.controller is SIP
    only_asterisk = campaign_dialler("auto", None, ASTERISK)
    assert isinstance(only_asterisk, AsteriskDialler) and only_asterisk.controller is ASTERISK
    assert campaign_dialler("auto", None, None) is None


def test_an_explicit_backend_is_that_backend_or_nothing() -> None:
    chosen = campaign_dialler("asterisk", SIP, ASTERISK)
    assert isinstance(chosen, AsteriskDialler)
    assert isinstance(campaign_dialler("sip", SIP, ASTERISK), ControllerDialler)
    assert campaign_dialler("asterisk", SIP, None) is None
    assert campaign_dialler("sip", None, ASTERISK) is None
