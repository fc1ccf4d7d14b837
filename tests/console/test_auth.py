"""Logging in over a real server on loopback: cookies, CSRF, session expiry, API tokens, the
first admin's forced password change, and the login throttle."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from console.identity import SessionRow, TokenRow
from core.clock import FakeClock
from tests.console_harness import PASSWORD, running_console

pytestmark = pytest.mark.xdist_group("console")


async def test_login_sets_secure_httponly_samesite_cookies_and_me_answers(
        tmp_path: Path) -> None:
    async with running_console(tmp_path) as con:
        con.add_user("olga", "ops")
        async with aiohttp.ClientSession() as raw, raw.post(con.url + "/api/auth/login",
                            json={"username": "olga", "password": PASSWORD}) as resp:
            assert resp.status == 200
            cookies = resp.headers.getall("Set-Cookie")
        session = next(c for c in cookies if c.startswith("ivr_session="))
        csrf = next(c for c in cookies if c.startswith("ivr_csrf="))
        for flag in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/"):
            assert flag in session, session
        assert "HttpOnly" not in csrf and "Secure" in csrf  # the page script reads it
        async with await con.client("olga") as c:
            status, me = await c.call("GET", "/api/auth/me")
        assert status == 200 and me["user"]["username"] == "olga" and me["via"] == "session"
        assert "flows.publish" in me["permissions"] and "users.manage" not in me["permissions"]
        with con.services.identity.db.session() as s:  # only a hash of the cookie is stored
            stored = s.scalars(select(SessionRow.id)).all()
        cookie_value = session.split(";")[0].split("=", 1)[1]
        assert cookie_value not in stored and len(stored) == 2  # two logins, two sessions


async def test_wrong_password_and_unknown_user_look_the_same(tmp_path: Path) -> None:
    async with running_console(tmp_path) as con:
        con.add_user("olga", "ops")
        async with await con.client() as c:
            s1, b1 = await c.login("olga", "not the password")
            s2, b2 = await c.login("nobody", "not the password")
            s3, b3 = await c.call("GET", "/api/flows")
    assert (s1, s2) == (401, 401) and b1 == b2
    assert b1["error"]["code"] == "bad_credentials"
    assert s3 == 401 and b3["error"]["code"] == "unauthenticated"


async def test_state_changes_need_the_csrf_token_with_a_session(tmp_path: Path) -> None:
    flow = {"id": "f1", "name": "F", "nodes": [{"id": "start", "type": "start"}], "edges": []}
    async with running_console(tmp_path) as con:
        con.add_user("dana", "designer")
        async with await con.client("dana") as c:
            no_header = await c.call("POST", "/api/flows", json_body={"document": flow},
                                     csrf=False)
            wrong = await c.call("POST", "/api/flows", json_body={"document": flow},
                                 headers={"X-CSRF-Token": "forged"})
            reads_fine = await c.call("GET", "/api/flows")
            right = await c.call("POST", "/api/flows", json_body={"document": flow})
        async with await con.client() as script:  # a token needs no CSRF token
            script.use_token(con.token("dana"))
            by_token = await script.call("PUT", "/api/flows/f1/draft",
                                         json_body={"document": flow, "revision": 1})
    assert no_header[0] == 403 and no_header[1]["error"]["code"] == "csrf"
    assert no_header[1]["error"]["field"] == "X-CSRF-Token"
    assert wrong[0] == 403 and wrong[1]["error"]["code"] == "csrf"
    assert reads_fine[0] == 200 and reads_fine[1]["items"] == []  # nothing was half-done
    assert right[0] == 201 and right[1]["revision"] == 1
    assert by_token[0] == 200 and by_token[1]["revision"] == 2


async def test_sessions_expire_when_idle_and_at_their_maximum_age(tmp_path: Path) -> None:
    clock = FakeClock()
    async with running_console(tmp_path, clock=clock, IVR_CONSOLE__SESSION_IDLE_S="600",
                               IVR_CONSOLE__SESSION_MAX_S="3600") as con:
        con.add_user("quinn", "qa")
        async with await con.client("quinn") as c:
            await clock.advance(599)
            assert (await c.call("GET", "/api/calls"))[0] == 200  # used: idle time restarts
            await clock.advance(599)
            assert (await c.call("GET", "/api/calls"))[0] == 200
            await clock.advance(601)
            status, body = await c.call("GET", "/api/calls")
        assert status == 401 and body["error"]["code"] == "session_expired"
        async with await con.client("quinn") as c:
            for _ in range(7):  # busy all along, but the session is an hour old
                await clock.advance(500)
                assert (await c.call("GET", "/api/calls"))[0] == 200
            await clock.advance(500)
            status, body = await c.call("GET", "/api/calls")
        assert status == 401 and body["error"]["code"] == "session_expired"


async def test_logout_ends_the_session(tmp_path: Path) -> None:
    async with running_console(tmp_path) as con:
        con.add_user("olga", "ops")
        async with await con.client("olga") as c:
            assert (await c.call("POST", "/api/auth/logout"))[0] == 204
            status, body = await c.call("GET", "/api/auth/me")
    assert status == 401


async def test_api_tokens_are_shown_once_scoped_and_revocable(tmp_path: Path) -> None:
    async with running_console(tmp_path) as con:
        con.add_user("olga", "ops")
        async with await con.client("olga") as c:
            status, made = await c.call("POST", "/api/tokens", json_body={
                "name": "reports", "scopes": ["calls.read"]})
            assert status == 201
            token, token_id = made["token"], made["info"]["id"]
            status, listed = await c.call("GET", "/api/tokens")
            assert "token" not in listed["items"][0] and listed["items"][0]["id"] == token_id
            too_much = await c.call("POST", "/api/tokens", json_body={
                "name": "x", "scopes": ["users.manage"]})
            async with await con.client() as script:
                script.use_token(token)
                calls = await script.call("GET", "/api/calls")
                flows = await script.call("GET", "/api/flows")
                assert (await c.call("DELETE", f"/api/tokens/{token_id}"))[0] == 200
                revoked = await script.call("GET", "/api/calls")
                bad = await script.use_token(token[:-2] + "xx").call("GET", "/api/calls")
        with con.services.identity.db.session() as s:
            secret_hash = s.scalar(select(TokenRow.secret_hash))
    assert calls[0] == 200
    assert flows[0] == 403 and "scopes" in flows[1]["error"]["message"]
    assert too_much[0] == 422 and too_much[1]["error"]["field"] == "scopes"
    assert revoked[0] == 401 and revoked[1]["error"]["code"] == "token_revoked"
    assert bad[0] == 401
    assert secret_hash and token.split("_")[-1] not in secret_hash  # only the hash is stored


async def test_first_admin_must_change_the_generated_password(tmp_path: Path) -> None:
    async with running_console(tmp_path) as con:
        assert con.admin_password  # printed once at the first start
        async with await con.client() as script:  # `ivr users token admin` works at once
            by_token = await script.use_token(con.token("admin")).call("GET", "/api/users")
        assert by_token[0] == 200
        async with await con.client("admin", con.admin_password) as c:
            blocked = await c.call("GET", "/api/users")
            me = await c.call("GET", "/api/auth/me")
            weak = await c.call("POST", "/api/auth/password", json_body={
                "current_password": con.admin_password, "new_password": "short"})
            changed = await c.call("POST", "/api/auth/password", json_body={
                "current_password": con.admin_password, "new_password": "a much longer one"})
            after = await c.call("GET", "/api/users")  # the change ended the session
        async with await con.client("admin", "a much longer one") as c:
            users = await c.call("GET", "/api/users")
    assert blocked[0] == 403 and blocked[1]["error"]["code"] == "password_change_required"
    assert me[0] == 200 and me[1]["user"]["must_change_password"]
    assert weak[0] == 422 and weak[1]["error"]["field"] == "password"
    assert changed[0] == 204 and after[0] == 401
    assert users[0] == 200 and [u["username"] for u in users[1]["items"]] == ["admin"]


async def test_repeated_failed_logins_are_throttled(tmp_path: Path) -> None:
    async with running_console(tmp_path, IVR_CONSOLE__LOGIN_ATTEMPTS="3") as con:
        con.add_user("olga", "ops")
        async with await con.client() as c:
            statuses = [(await c.login("olga", "guess"))[0] for _ in range(3)]
            status, body = await c.login("olga", PASSWORD)  # even the right one, for now
    assert statuses == [401, 401, 401]
    assert status == 429 and body["error"]["code"] == "too_many_attempts"
