"""A campaign dialled through a real Asterisk: ``[campaigns] backend = asterisk`` makes the
runner place its calls with AMI Originate (engine/ami/dialler.py) instead of the engine's own
SIP stack; Asterisk's PJSIP dials the SIPp answerers of tests/campaign_sipp.py (the number's
last digit decides: answer, busy, 480, 503). The dispositions, the attempts and the call
records are the ones the SIP backend gives, with ``backend = asterisk`` on the records."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from campaigns.contacts import Contact
from campaigns.spec import parse_spec
from campaigns.store import CampaignStore
from flows.store import FlowStore
from storage import open_database
from tests.asterisk import Asterisk
from tests.campaign_sipp import scenario
from tests.integration.asterisk_harness import asterisk_engine
from tests.netutil import free_port, free_port_block, wait_until
from tests.sipp import SippServer

pytestmark = [pytest.mark.sipp, pytest.mark.asterisk, pytest.mark.xdist_group("asterisk")]
HANGUP_FLOW = {"format": 1, "id": "ast_hangup", "name": "Asterisk campaign: hang up",
               "nodes": [{"id": "start", "type": "start"},
                         {"id": "hi", "type": "play",
                          "params": {"prompt": {"text": "您好，这是一条测试通知。"}}},
                         {"id": "bye", "type": "hangup"}],
               "edges": [{"from": "start", "port": "next", "to": "hi"},
                         {"from": "hi", "port": "next", "to": "bye"}]}
EXPECTED = {"+8613800000010": "answered", "+8613800000011": "busy",
            "+8613800000012": "no_answer", "+8613800000013": "failed"}


async def test_a_campaign_dials_through_asterisk(tmp_path: Path, asterisk: Asterisk) -> None:
    port = free_port()
    uas_dir = tmp_path / "uas"
    uas_dir.mkdir()
    trunks = json.dumps([{"name": "asterisk", "uri": "{number}", "number_format": "digits"}])
    async with SippServer(scenario(uas_dir, audio=False), local_port=port, workdir=uas_dir,
                          extra=["-mp", str(free_port_block(8))]), asterisk_engine(
            tmp_path, asterisk, IVR_CAMPAIGNS__BACKEND="asterisk",
            IVR_CAMPAIGNS__TRUNKS=trunks, IVR_CAMPAIGNS__POLL_S="0.3",
            IVR_COMPLIANCE__WINDOW_START="00:00", IVR_COMPLIANCE__WINDOW_END="23:59:59.999",
            IVR_ASTERISK__DIAL_TEMPLATE=f"PJSIP/sipp/sip:{{number}}@127.0.0.1:{port}",
    ) as engine:
        assert engine.campaigns is not None, "the runner dials through the Asterisk backend"
        db = open_database(f"sqlite:///{tmp_path}/ivr.sqlite")
        flow = FlowStore(db).publish(HANGUP_FLOW, tenant="default")
        spec = parse_spec({"id": "ast", "name": "通过 Asterisk", "ring_timeout_s": 3,
                           "flow": {"id": flow.flow_id, "version": flow.version},
                           "schedule": {"window_start": "00:00", "window_end": "23:59"},
                           "pacing": {"calls_per_s": 2, "max_concurrent": 2},
                           "retry": {"max_attempts": 1}})
        store = CampaignStore(db)
        c = store.create(spec, [Contact(n, n, i + 2, {}) for i, n in enumerate(EXPECTED)],
                         flow_id=flow.flow_id, flow_version=flow.version, now=0.0)
        store.set_state(c.id, "running", 0.0)
        engine.campaigns.poke()
        await wait_until(lambda: store.get(c.id).state == "finished", 120,
                         "the campaign finishing")
        await engine.wait_idle()
    with sqlite3.connect(tmp_path / "ivr.sqlite") as conn:
        attempts = dict(conn.execute(
            "SELECT number, disposition FROM campaign_attempts WHERE campaign_id = 'ast'"))
        backends = {row[0] for row in conn.execute(
            "SELECT backend FROM calls WHERE direction = 'outbound'")}
    assert attempts == EXPECTED
    assert backends == {"asterisk"}
