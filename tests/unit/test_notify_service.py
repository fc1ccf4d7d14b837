"""The SMS service without a gateway: what ``send`` refuses on the spot, and that a recording-only
service (``ivr call``, the CLI) leaves the serving engine's messages in flight alone."""

from __future__ import annotations

from pathlib import Path

from core.clock import SystemClock
from notify.gateway_none import OutboxOnly
from notify.outbox import Outbox
from notify.service import NotifySettings, SmsRequest, SmsService
from storage import open_database


def service(tmp_path: Path, **kw: object) -> SmsService:
    db = open_database(f"sqlite:///{tmp_path}/s.sqlite")
    return SmsService(Outbox(db), OutboxOnly(), SystemClock(),
                      settings=NotifySettings(**kw))  # type: ignore[arg-type]


async def test_a_recording_only_service_leaves_messages_in_flight_alone(tmp_path: Path) -> None:
    engine = service(tmp_path)
    rec = await engine.send(SmsRequest(to="13800138000", text="hi"))
    (claimed,) = engine.outbox.claim_due(rec.due_at + 1, 10)  # the serving engine has it
    cli = service(tmp_path)
    await cli.start(dispatch=False)
    await cli.stop()
    assert cli.recovered_unknown == 0
    assert (engine.outbox.get(claimed.id) or rec).status == "sending"
    restarted = service(tmp_path)  # the serving engine itself, after a kill
    await restarted.start()
    await restarted.stop()
    assert restarted.recovered_unknown == 1


async def test_send_refuses_on_the_spot_with_the_reason(tmp_path: Path) -> None:
    svc = service(tmp_path, max_parts=2, signature="Acme")
    long = await svc.send(SmsRequest(to="13800138000", text="长" * 190))  # 196 with the signature
    assert long.status == "refused" and "3 parts, more than max_parts 2" in long.reason
    broken = await svc.send(SmsRequest(to="13800138000", text="您好 {{ name "))
    assert broken.status == "refused" and "never closed" in broken.reason
    missing = await svc.send(SmsRequest(to="13800138000", text="您好 {{ name }}"))
    assert missing.status == "refused" and "name" in missing.reason
    ok = await svc.send(SmsRequest(to="+86 138 0013 8000", text="您好 {{ name }}",
                                   variables={"name": "王"}))
    assert (ok.status, ok.to, ok.text, ok.parts) == (
        "queued", "+8613800138000", "【Acme】您好 王", 1)
    literal = await svc.send(SmsRequest(to="13800138000", text="{{ not a template", literal=True))
    assert literal.status == "queued" and literal.text == "【Acme】{{ not a template"
    assert {r.status for r in svc.outbox.recent()} == {"refused", "queued"}
