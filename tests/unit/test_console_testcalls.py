"""Where test calls may go: only to ``[console] test_call_targets``; numbers through the
gateway; anything else refused naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.audit import AuditLog
from console.services.base import Invalid
from console.services.flows import FlowOps
from console.services.testcalls import TestCalls
from core.clock import FakeClock
from flows.drafts import DraftStore, FlowTestStore
from flows.services import ListWordChecker
from flows.store import FlowStore
from storage.db import open_database


def calls(tmp_path: Path, gateway: str | None = None) -> TestCalls:
    db = open_database(f"sqlite:///{tmp_path}/t.sqlite")
    flows = FlowOps(FlowStore(db), DraftStore(db), FlowTestStore(db), AuditLog(db),
                    lambda _t: ListWordChecker([]))
    return TestCalls(flows, None, FakeClock(), allowed_targets=["127.0.0.0/8", "pbx.example"],
                     gateway=gateway)


def test_targets_are_limited_to_the_configured_hosts_and_networks(tmp_path: Path) -> None:
    tc = calls(tmp_path, gateway="127.0.0.1:5099")
    assert tc.resolve_target("sip:bob@127.0.0.2:5090") == "sip:bob@127.0.0.2:5090"
    assert tc.resolve_target("sip:1000@pbx.example") == "sip:1000@pbx.example"
    assert tc.resolve_target("+8613800138000") == "sip:+8613800138000@127.0.0.1:5099"
    for bad, code in (("sip:bob@8.8.8.8", "target_forbidden"),
                      ("sip:bob@pbx.example.evil", "target_forbidden"),
                      ("http://x", "invalid"), ("sip:", "invalid"), ("", "invalid")):
        with pytest.raises(Invalid) as e:
            tc.resolve_target(bad)
        assert (e.value.field, e.value.code) == ("to", code), bad


def test_numbers_need_a_gateway(tmp_path: Path) -> None:
    with pytest.raises(Invalid, match="test_call_gateway"):
        calls(tmp_path).resolve_target("13800138000")
