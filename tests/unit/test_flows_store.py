"""Publishing, immutable versions, routes and content security, on a real SQLite file."""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import pytest

from core.clock import FakeClock
from flows.interpreter import Interpreter
from flows.routing import FlowRouter
from flows.services import ListWordChecker
from flows.simulator import SimulatedCall
from flows.store import FlowStore, FlowVersionRow, PublishBlocked, UnknownFlow
from flows.validator import FlowInvalid
from storage.db import open_database

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "flows"


def greeting(text: str) -> dict[str, Any]:
    return {
        "id": "greet",
        "name": "Greeting",
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "bye", "type": "hangup", "params": {"prompt": {"text": text}}},
        ],
        "edges": [{"from": "start", "port": "next", "to": "bye"}],
    }


@pytest.fixture
def store(db_url: str) -> FlowStore:
    return FlowStore(open_database(db_url))


def test_publish_creates_versions_and_dedupes_by_hash(store: FlowStore) -> None:
    v1 = store.publish(greeting("hello"))
    assert (v1.version, v1.created) == (1, True) and len(v1.content_hash) == 64
    again = store.publish(greeting("hello"))
    assert (again.version, again.created) == (1, False)
    v2 = store.publish(greeting("hello again"))
    assert v2.version == 2 and v2.content_hash != v1.content_hash
    assert store.get("greet").version == 2
    assert store.get("greet", 1).document["nodes"][1]["params"]["prompt"]["text"] == "hello"
    rows = store.list_flows()
    assert rows[0]["flow_id"] == "greet" and rows[0]["latest_version"] == 2
    assert rows[0]["versions"] == 2


def test_published_versions_are_immutable(store: FlowStore) -> None:
    store.publish(greeting("hello"))
    with pytest.raises(PermissionError, match="immutable"), store.db.session() as s:
        row = s.query(FlowVersionRow).one()
        row.document = "{}"
        s.flush()
    assert store.get("greet", 1).document["id"] == "greet"


def test_invalid_flow_is_not_published(store: FlowStore) -> None:
    doc = greeting("x")
    doc["edges"] = []
    with pytest.raises(FlowInvalid) as e:
        store.publish(doc)
    assert any(p.code == "unconnected_port" for p in e.value.problems)
    with pytest.raises(UnknownFlow):
        store.get("greet")


def test_blocked_words_fail_publish_with_the_node(store: FlowStore) -> None:
    words = ListWordChecker(["guaranteed winner"])
    doc = json.loads((EXAMPLES / "outbound_notification.json").read_text())
    nodes = {n["id"]: n for n in doc["nodes"]}
    nodes["bye_silent"]["params"]["prompt"]["text"] = "You are a GUARANTEED WINNER. Goodbye."
    nodes["sms_confirm"]["params"]["text"] = "Guaranteed winner {{ campaign.store | default('x') }}"
    with pytest.raises(PublishBlocked) as e:
        store.publish(doc, words=words)
    hits = {(p.node_id, p.code) for p in e.value.problems}
    assert hits == {("bye_silent", "blocked_words"), ("sms_confirm", "blocked_words")}
    assert (
        store.publish(
            json.loads((EXAMPLES / "outbound_notification.json").read_text()), words=words
        ).version
        == 1
    )


def test_tenants_are_isolated(store: FlowStore) -> None:
    store.publish(greeting("a"), tenant="acme")
    with pytest.raises(UnknownFlow):
        store.get("greet")
    assert store.get("greet", tenant="acme").tenant == "acme"
    assert store.list_flows() == []


def test_routes_and_fallback(store: FlowStore) -> None:
    store.publish(greeting("main"))
    with pytest.raises(UnknownFlow):
        store.set_route("100", "nope")
    store.set_route("100", "greet")
    assert store.resolve("100") is not None
    assert store.resolve("200") is None
    store.set_route("*", "greet")
    resolved = store.resolve("200")
    assert resolved is not None and resolved.flow_id == "greet"


async def test_a_call_keeps_its_version_while_a_new_one_goes_live(store: FlowStore) -> None:
    store.publish(greeting("version one"))
    store.set_route("100", "greet")
    router = FlowRouter(store)
    routed_first = router.resolve("100")
    assert routed_first is not None
    first = routed_first.flow
    assert first.version == 1
    store.publish(greeting("version two"))
    routed_second = router.resolve("100")
    assert routed_second is not None
    second = routed_second.flow
    assert second.version == 2
    clock = FakeClock()
    old_call, new_call = SimulatedCall(clock), SimulatedCall(clock)
    r1 = await asyncio.wait_for(Interpreter(first, old_call, clock=clock).run(), 5)
    await asyncio.wait_for(Interpreter(second, new_call, clock=clock).run(), 5)
    assert old_call.outputs[0].text == "version one" and r1.flow_version == 1
    assert new_call.outputs[0].text == "version two"


def test_router_falls_back_to_config_then_default_file(store: FlowStore) -> None:
    store.publish(greeting("configured"))
    router = FlowRouter(
        store, config_routes={"300": "greet"}, default_flow=EXAMPLES / "account_balance.json"
    )
    via_config = router.resolve("300")
    assert via_config is not None and via_config.flow.id == "greet"
    default = router.resolve("999")
    assert default is not None and default.flow.id == "account_balance"
    assert FlowRouter(None, default_flow=None).resolve("1") is None


def test_the_tenant_that_routes_a_number_owns_the_call(store: FlowStore) -> None:
    """A dialled number belongs to the tenant that routes it; other numbers fall back to the
    router's own tenant (config routes, ``*``, the default flow)."""
    store.publish(greeting("acme's"), tenant="acme")
    store.set_route("4001", "greet", tenant="acme")
    store.publish(greeting("operator's"))
    store.set_route("*", "greet")
    router = FlowRouter(store, tenant="default")
    acme = router.resolve("4001")
    assert acme is not None and acme.tenant == "acme"
    other = router.resolve("4002")
    assert other is not None and other.tenant == "default"
    assert store.route_owners("4001") == ["acme"] and store.route_owners("4002") == []


def test_document_is_stored_canonically(store: FlowStore) -> None:
    doc = greeting("x")
    pub = store.publish(copy.deepcopy(doc))
    assert pub.compile().content_hash == pub.content_hash
