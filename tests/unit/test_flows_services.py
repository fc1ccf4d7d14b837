"""Flows with the real services of other areas (compliance lists and words), sync services in a
worker thread, and the menu's keypad fallback when no recogniser is available."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from core.call import ListenResult, ListenSpec
from core.clock import FakeClock
from flows.interpreter import Interpreter
from flows.services import ComplianceListChecker, FlowServices, SimpleSpeakerResult
from flows.simulator import SimInput, SimulatedCall
from flows.store import FlowStore, PublishBlocked
from flows.validator import compile_flow
from storage.db import open_database

START = {"id": "start", "type": "start"}


def edges(*triples: tuple[str, str, str]) -> list[dict[str, str]]:
    return [{"from": a, "port": p, "to": b} for a, p, b in triples]


def screening_flow() -> Any:
    return compile_flow(
        {
            "id": "screen",
            "name": "s",
            "nodes": [
                START,
                {
                    "id": "chk",
                    "type": "check_list",
                    "params": {"number": "caller", "variable": "why"},
                },
                {"id": "ok", "type": "hangup", "params": {"prompt": {"text": "welcome"}}},
                {"id": "no", "type": "hangup", "params": {"prompt": {"text": "refused"}}},
            ],
            "edges": edges(
                ("start", "next", "chk"), ("chk", "allowed", "ok"), ("chk", "blocked", "no")
            ),
        }
    )


async def test_real_compliance_blacklist_blocks(fake_clock: FakeClock) -> None:
    compliance = pytest.importorskip("compliance.service")
    lists = pytest.importorskip("compliance.lists")
    service = compliance.ComplianceService(region="US")
    await service.lists.add([lists.ListEntry(lists.ListKind.BLACK, "+12025550123")])
    services = FlowServices(lists=ComplianceListChecker(service))
    blocked = SimulatedCall(fake_clock, caller="+12025550123")
    res = await Interpreter(screening_flow(), blocked, clock=fake_clock, services=services).run()
    assert blocked.outputs[0].text == "refused" and res.variables["why"] == ["blacklisted"]
    fine = SimulatedCall(fake_clock, caller="+12025550124")
    await Interpreter(screening_flow(), fine, clock=fake_clock, services=services).run()
    assert fine.outputs[0].text == "welcome"


def test_real_word_filter_blocks_publish(tmp_path: Path) -> None:
    words = pytest.importorskip("compliance.words")
    wf = words.WordFilter([words.Term("free money")])
    store = FlowStore(open_database(f"sqlite:///{tmp_path}/f.sqlite"))
    doc = {
        "id": "w",
        "name": "w",
        "nodes": [
            START,
            {"id": "sms", "type": "send_sms", "params": {"text": "Get FREE money"}},
            {"id": "bye", "type": "hangup"},
        ],
        "edges": edges(("start", "next", "sms"), ("sms", "sent", "bye"), ("sms", "error", "bye")),
    }
    with pytest.raises(PublishBlocked) as e:
        store.publish(doc, words=wf)
    (problem,) = e.value.problems
    assert problem.node_id == "sms" and "free money" in problem.message


class ThreadedVerifier:
    """A sync verifier (like a model call); must not run on the event loop thread."""

    def __init__(self) -> None:
        self.threads: list[int] = []
        self.tenants: list[str] = []

    def enroll(self, person_id: str, audio_list: Any, *,
               tenant_id: str = "default") -> SimpleSpeakerResult:
        return SimpleSpeakerResult("enrolled")

    def verify(self, person_id: str, audio: Any, *,
               tenant_id: str = "default") -> SimpleSpeakerResult:
        self.threads.append(threading.get_ident())
        self.tenants.append(tenant_id)
        return SimpleSpeakerResult("no_match", 0.1)


async def test_sync_services_run_off_the_loop(fake_clock: FakeClock) -> None:
    flow = compile_flow(
        {
            "id": "v",
            "name": "v",
            "variables": {"acct": "42"},
            "nodes": [
                START,
                {
                    "id": "v",
                    "type": "verify_speaker",
                    "params": {
                        "person_id": "acct",
                        "prompt": {"text": "say it"},
                        "max_attempts": 2,
                        "score_variable": "score",
                    },
                },
                {"id": "bye", "type": "hangup"},
            ],
            "edges": edges(
                ("start", "next", "v"),
                ("v", "match", "bye"),
                ("v", "no_match", "bye"),
                ("v", "not_enrolled", "bye"),
                ("v", "insufficient_audio", "bye"),
            ),
        }
    )
    verifier = ThreadedVerifier()
    call = SimulatedCall(fake_clock)
    call.feed(SimInput("say", "my voice"))
    call.feed(SimInput("say", "my voice again"))
    res = await asyncio.wait_for(
        Interpreter(flow, call, clock=fake_clock, services=FlowServices(speaker=verifier),
                    tenant="acme").run(), 5
    )
    assert res.trace[1]["outcome"] == "no_match" and res.variables["score"] == 0.1
    assert len(verifier.threads) == 2
    assert verifier.tenants == ["acme", "acme"]  # voiceprints are looked up in the call's tenant
    assert threading.get_ident() not in verifier.threads


class NoAsrCall(SimulatedCall):
    async def listen(self, spec: ListenSpec) -> ListenResult:
        return ListenResult("error", error="no recogniser")


async def test_menu_degrades_to_keypad_without_a_recogniser(fake_clock: FakeClock) -> None:
    flow = compile_flow(
        {
            "id": "m",
            "name": "m",
            "nodes": [
                START,
                {
                    "id": "m",
                    "type": "menu",
                    "params": {
                        "prompt": {"text": "say or press"},
                        "options": [{"port": "a", "digits": ["1"], "keywords": ["alpha"]}],
                    },
                },
                {"id": "bye", "type": "hangup"},
            ],
            "edges": edges(
                ("start", "next", "m"),
                ("m", "a", "bye"),
                ("m", "no_input", "bye"),
                ("m", "no_match", "bye"),
            ),
        }
    )
    call = NoAsrCall(fake_clock)
    task = asyncio.create_task(Interpreter(flow, call, clock=fake_clock).run())
    await asyncio.wait_for(call.idle.wait(), 5)  # listen failed; now waiting for a key
    assert call.waiting_for == "digits"
    call.feed_digits("1")
    res = await asyncio.wait_for(task, 5)
    assert res.trace[1]["outcome"] == "a"
    assert any(e.kind == "flow.asr_unavailable" for e in call.trace.entries)
