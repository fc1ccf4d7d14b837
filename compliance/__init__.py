"""The operator's rules as a pure library: sensitive words, black/white lists, frequency caps and
calling windows. No telephony here; the dialer, flows, TTS, SMS, console and inspection call in."""

from compliance.hooks import (
    BlockedText,
    FlowBlocked,
    assert_flow_publishable,
    check_flow,
    guard_text,
)
from compliance.lists import InMemoryListStore, ListEntry, ListKind, ListReason, Scope
from compliance.numbers import InvalidNumber, normalize
from compliance.service import CampaignRules, ComplianceService, Decision, Reason
from compliance.windows import CallingWindow
from compliance.words import Action, Hit, ScanResult, StreamingScanner, Term, WordFilter

__all__ = [
    "Action", "BlockedText", "CallingWindow", "CampaignRules", "ComplianceService", "Decision",
    "FlowBlocked", "Hit", "InMemoryListStore", "InvalidNumber", "ListEntry", "ListKind",
    "ListReason", "Reason", "ScanResult", "Scope", "StreamingScanner", "Term", "WordFilter",
    "assert_flow_publishable", "check_flow", "guard_text", "normalize",
]
