"""Every role's allowed and refused operations, over a real server: one row per API operation
naming the roles that may call it. A refused call is a 403 ``forbidden``; an allowed one gets
past authorisation (its answer may still be a 404 or 422 for the sample input). The table is
written out here rather than read from ``console.roles``, so a permission changed by accident
fails this test; and every operation of the API must have a row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from console.api.app import build_api
from console.roles import Role
from tests.console_harness import running_console

pytestmark = pytest.mark.xdist_group("console")

ALL = "admin ops designer qa client"
ALLOWED: dict[str, str] = {
    "logout": ALL, "me": ALL, "change_password": ALL,
    "list_tokens": ALL, "create_token": ALL, "revoke_token": ALL,
    "list_users": "admin", "create_user": "admin", "get_user": "admin", "update_user": "admin",
    "set_password": "admin",
    "list_tenants": "admin ops designer qa", "create_tenant": "admin",
    "audit_log": "admin ops client",
    "flow_schema": ALL, "list_flows": ALL, "get_flow": ALL, "validate_flow": ALL,
    "list_versions": ALL, "get_version": ALL, "diff_flow": ALL, "get_tests": ALL,
    "list_routes": ALL,
    "create_flow": "admin ops designer client", "save_draft": "admin ops designer client",
    "delete_draft": "admin ops designer client", "save_tests": "admin ops designer client",
    "run_tests": "admin ops designer client",
    "publish_flow": "admin ops designer client", "rollback_flow": "admin ops designer client",
    "set_route": "admin ops", "delete_route": "admin ops",
    "start_simulation": "admin ops designer client", "get_simulation": "admin ops designer client",
    "simulation_input": "admin ops designer client", "end_simulation": "admin ops designer client",
    "simulation_prompt": "admin ops designer client",
    "place_test_call": "admin ops designer", "list_test_calls": ALL, "get_test_call": ALL,
    "search_calls": ALL, "get_call": ALL, "get_recording": "admin ops qa client",
    "events": ALL,
    "call_stats": ALL, "call_stats_csv": ALL, "live_calls": ALL,
    "list_words": ALL, "test_words": ALL,
    "add_word": "admin ops client", "remove_word": "admin ops client",
    "import_words": "admin ops client",
    "list_entries": "admin ops qa client", "check_number": "admin ops qa client",
    "add_entry": "admin ops client", "remove_entry": "admin ops client",
    "import_entries": "admin ops client",
    "list_voiceprints": "admin ops client", "voiceprint_access": "admin ops client",
    "delete_voiceprint": "admin ops client",
    "search_inspections": "admin ops qa client", "get_inspection": "admin ops qa client",
    "list_scorecards": "admin ops qa client", "inspection_stats": "admin ops qa client",
    "export_inspections": "admin ops qa client",
    "rerun_inspection": "admin ops qa client", "import_scorecard": "admin ops qa client",
    "set_scorecard_active": "admin ops qa client", "inspection_audit": "admin ops qa client",
    "inspection_jobs": "admin ops",
    "review_queue": "admin qa client", "assign_review": "admin qa client",
    "decide_review": "admin qa client", "start_calibration": "admin qa client",
    "calibration_agreement": "admin qa client", "list_calibrations": "admin qa client",
    "list_campaigns": "admin ops qa client", "get_campaign": "admin ops qa client",
    "campaign_report": "admin ops qa client", "campaign_report_csv": "admin ops qa client",
    "create_campaign": "admin ops client", "edit_campaign": "admin ops client",
    "upload_contacts": "admin ops client", "control_campaign": "admin ops client",
}
PUBLIC = {"health", "login"}

FLOW = {"id": "f1", "name": "F1", "nodes": [
    {"id": "start", "type": "start"},
    {"id": "bye", "type": "hangup", "params": {"prompt": {"text": "Goodbye."}}}],
    "edges": [{"from": "start", "port": "next", "to": "bye"}]}
BOGUS_UUID = "00000000-0000-0000-0000-000000000000"


def samples(role: str, user_id: int) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """(method, path, request kwargs) per operation, for one role."""
    return {
        "logout": ("POST", "/api/auth/logout", {}),
        "me": ("GET", "/api/auth/me", {}),
        "change_password": ("POST", "/api/auth/password", {"json_body": {
            "current_password": "not it", "new_password": "whatever is long"}}),
        "list_tokens": ("GET", "/api/tokens", {}),
        "create_token": ("POST", "/api/tokens", {"json_body": {"name": "t"}}),
        "revoke_token": ("DELETE", "/api/tokens/abcdef", {}),
        "list_users": ("GET", "/api/users", {}),
        "create_user": ("POST", "/api/users", {"json_body": {
            "username": f"new-{role}", "password": "long enough pw", "role": "qa"}}),
        "get_user": ("GET", f"/api/users/{user_id}", {}),
        "update_user": ("PATCH", f"/api/users/{user_id}", {"json_body": {"display_name": "x"}}),
        "set_password": ("PUT", f"/api/users/{user_id}/password", {"json_body": {
            "password": "another long one"}}),
        "list_tenants": ("GET", "/api/tenants", {}),
        "create_tenant": ("POST", "/api/tenants", {"json_body": {"id": f"t-{role}",
                                                                 "name": "T"}}),
        "audit_log": ("GET", "/api/audit", {}),
        "flow_schema": ("GET", "/api/schemas/flow", {}),
        "list_flows": ("GET", "/api/flows", {}),
        "create_flow": ("POST", "/api/flows", {"json_body": {"document": {
            **FLOW, "id": f"new_{role}"}}}),
        "get_flow": ("GET", "/api/flows/f1", {}),
        "save_draft": ("PUT", "/api/flows/scratch/draft", {"json_body": {"document": {
            **FLOW, "id": "scratch"}}}),
        "delete_draft": ("DELETE", "/api/flows/nothing/draft", {}),
        "validate_flow": ("POST", "/api/flows/f1/validate", {"json_body": {}}),
        "publish_flow": ("POST", "/api/flows/f1/publish", {"json_body": {}}),
        "list_versions": ("GET", "/api/flows/f1/versions", {}),
        "get_version": ("GET", "/api/flows/f1/versions/1", {}),
        "diff_flow": ("GET", "/api/flows/f1/diff", {}),
        "rollback_flow": ("POST", "/api/flows/f1/rollback", {"json_body": {"version": 1}}),
        "get_tests": ("GET", "/api/flows/f1/tests", {}),
        "save_tests": ("PUT", "/api/flows/f1/tests", {"json_body": {"document": {
            "cases": [{"name": "c", "steps": [{"expect_end": "hangup"}]}]}}}),
        "run_tests": ("POST", "/api/flows/f1/tests/run", {"json_body": {"document": {
            "cases": [{"name": "c", "steps": [{"expect_end": "hangup"}]}]}}}),
        "list_routes": ("GET", "/api/routes", {}),
        "set_route": ("PUT", "/api/routes/5000", {"json_body": {"flow_id": "f1"}}),
        "delete_route": ("DELETE", "/api/routes/9999", {}),
        "start_simulation": ("POST", "/api/simulations", {"json_body": {"flow_id": "f1"}}),
        "get_simulation": ("GET", "/api/simulations/nosuchsession", {}),
        "simulation_input": ("POST", "/api/simulations/nosuchsession/input", {
            "json_body": {"kind": "digits", "value": "1"}}),
        "end_simulation": ("DELETE", "/api/simulations/nosuchsession", {}),
        "simulation_prompt": ("GET", "/api/simulations/nosuchsession/prompts/1", {}),
        "place_test_call": ("POST", "/api/testcalls", {"json_body": {
            "flow_id": "f1", "to": "sip:x@127.0.0.1:9"}}),
        "list_test_calls": ("GET", "/api/testcalls", {}),
        "get_test_call": ("GET", f"/api/testcalls/{BOGUS_UUID}", {}),
        "search_calls": ("GET", "/api/calls", {}),
        "get_call": ("GET", f"/api/calls/{BOGUS_UUID}", {}),
        "get_recording": ("GET", f"/api/calls/{BOGUS_UUID}/recording", {}),
        "events": ("GET", "/api/events", {}),
        "call_stats": ("GET", "/api/stats/calls", {}),
        "call_stats_csv": ("GET", "/api/stats/calls.csv", {"params": {"chart": "calls"}}),
        "live_calls": ("GET", "/api/stats/live", {}),
        "list_words": ("GET", "/api/words", {}),
        "add_word": ("POST", "/api/words", {"json_body": {"term": f"bad{role}"}}),
        "remove_word": ("DELETE", "/api/words", {"params": {"term": "nothing"}}),
        "import_words": ("POST", "/api/words/import", {
            "data": "foo\n", "headers": {"Content-Type": "text/plain"}}),
        "test_words": ("POST", "/api/words/test", {"json_body": {"text": "hello"}}),
        "list_entries": ("GET", "/api/lists", {}),
        "add_entry": ("POST", "/api/lists", {"json_body": {"number": "+8613800138000"}}),
        "remove_entry": ("DELETE", "/api/lists", {"params": {"number": "+8613800138999"}}),
        "import_entries": ("POST", "/api/lists/import", {
            "data": "+8613800138001\n", "headers": {"Content-Type": "text/csv"}}),
        "check_number": ("POST", "/api/lists/check", {"json_body": {
            "number": "+8613800138000"}}),
        "list_voiceprints": ("GET", "/api/voiceprints", {}),
        "delete_voiceprint": ("DELETE", "/api/voiceprints/nobody", {}),
        "voiceprint_access": ("GET", "/api/voiceprints/nobody/audit", {}),
        "search_inspections": ("GET", "/api/inspections", {}),
        "get_inspection": ("GET", f"/api/inspections/{BOGUS_UUID}", {}),
        "rerun_inspection": ("POST", f"/api/inspections/{BOGUS_UUID}/rerun", {}),
        "inspection_jobs": ("GET", "/api/inspection/jobs", {}),
        "list_scorecards": ("GET", "/api/scorecards", {}),
        "import_scorecard": ("POST", "/api/scorecards", {"json_body": {"document": {
            "id": f"card_{role}", "sections": [{"name": "A", "items": [{"id": "x", "rule": {
                "type": "phrase", "phrases": ["hello"]}}]}]}}}),
        "set_scorecard_active": ("PATCH", "/api/scorecards/nope", {"json_body": {
            "active": False}}),
        "inspection_audit": ("GET", "/api/inspection/audit", {}),
        "review_queue": ("GET", "/api/reviews", {}),
        "assign_review": ("POST", "/api/reviews", {"json_body": {"call_id": BOGUS_UUID}}),
        "decide_review": ("POST", "/api/reviews/999/verdict", {"json_body": {
            "verdict": "agree"}}),
        "start_calibration": ("POST", "/api/calibrations", {"json_body": {
            "session": "s1", "call_ids": [BOGUS_UUID], "reviewers": ["a", "b"]}}),
        "calibration_agreement": ("GET", "/api/calibrations/s1", {}),
        "list_calibrations": ("GET", "/api/calibrations", {}),
        "inspection_stats": ("GET", "/api/inspection/stats", {}),
        "export_inspections": ("GET", "/api/inspection/export", {}),
        "list_campaigns": ("GET", "/api/campaigns", {}),
        "create_campaign": ("POST", "/api/campaigns", {"json_body": {"spec": {
            "id": f"camp-{role}", "name": "C", "flow": {"id": "f1"}}}}),
        "get_campaign": ("GET", "/api/campaigns/nocampaign", {}),
        "edit_campaign": ("PATCH", "/api/campaigns/nocampaign", {"json_body": {"spec": {
            "name": "C", "flow": {"id": "f1"}}}}),
        "control_campaign": ("POST", "/api/campaigns/nocampaign/actions/pause", {}),
        "upload_contacts": ("POST", "/api/campaigns/nocampaign/contacts", {
            "data": "13800138000\n", "headers": {"Content-Type": "text/csv"}}),
        "campaign_report": ("GET", "/api/campaigns/nocampaign/report", {}),
        "campaign_report_csv": ("GET", "/api/campaigns/nocampaign/report.csv", {}),
    }


def test_every_operation_has_a_row() -> None:
    ops = {op.operation_id for op in build_api().operations}
    assert ops - PUBLIC == set(ALLOWED), "add the new operation to ALLOWED and samples()"
    assert set(samples("x", 1)) == set(ALLOWED)


async def test_each_role_may_do_exactly_what_the_table_says(tmp_path: Path) -> None:
    async with running_console(tmp_path) as con:
        target = con.add_user("target", "qa")
        users = {role: con.add_user(f"u-{role}", role) for role in Role}
        con.services.flows.publish_document(_actor(), "default", FLOW)
        wrong: list[str] = []
        for role in Role:
            async with await con.client() as c:
                c.use_token(con.token(users[role].username))
                for op_id, (method, path, kwargs) in samples(role.value, target.id).items():
                    status, body = await c.call(method, path, **kwargs)
                    allowed = role.value in ALLOWED[op_id].split()
                    if allowed and status in (401, 403, 500):
                        wrong.append(f"{role} {op_id}: expected allowed, got {status} {body}")
                    if not allowed and (status != 403 or body["error"]["code"] != "forbidden"):
                        wrong.append(f"{role} {op_id}: expected 403 forbidden, got {status}")
    assert not wrong, "\n".join(wrong)


def _actor() -> Any:
    from console.roles import Principal
    from console.services.base import Actor

    return Actor(Principal.cli("test"))
