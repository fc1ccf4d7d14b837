"""What a trunk asks of the UAC: REGISTER with digest, 407 proxy authentication, TLS.

The registrar and the proxy are SIPp scenarios (real peers); the TLS call goes between two
engine user agents because Debian's SIPp is built without TLS.
"""

from __future__ import annotations

import asyncio
import datetime
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from engine.sip.security import InboundPolicy
from engine.sip.transport import make_ssl_contexts
from engine.sip.ua import Credentials, UserAgent
from tests.integration.test_sip_sipp import (
    ANSWER_SDP,
    AnsweringHandler,
    call_authenticating_uas,
    start_ua,
)
from tests.netutil import free_port
from tests.sipp import SippServer

pytestmark = [pytest.mark.sipp, pytest.mark.xdist_group("sipp")]
FIXTURES = Path(__file__).parent.parent / "fixtures" / "sipp"


async def test_register_answers_registrar_challenge(tmp_path: Path) -> None:
    ua, _ = await start_ua()
    port = free_port()
    try:
        async with SippServer(FIXTURES / "registrar_digest.xml", local_port=port,
                              workdir=tmp_path, extra=["-m", "1"]) as reg:
            resp = await ua.register(f"sip:127.0.0.1:{port}", "trunk",
                                     Credentials("trunk", "regpw"), expires=120)
            assert reg.proc is not None
            await asyncio.wait_for(reg.proc.wait(), 10)
        result = reg.result()
    finally:
        await ua.stop()
    assert resp.status == 200
    assert result.successful == 1, result


async def test_register_with_wrong_password_is_refused(tmp_path: Path) -> None:
    ua, _ = await start_ua()
    port = free_port()
    try:
        async with SippServer(FIXTURES / "registrar_digest.xml", local_port=port,
                              workdir=tmp_path, extra=["-m", "1"]):
            resp = await ua.register(f"sip:127.0.0.1:{port}", "trunk",
                                     Credentials("trunk", "nope"), expires=120)
    finally:
        await ua.stop()
    assert resp.status == 403


async def test_invite_through_407_proxy_auth(tmp_path: Path) -> None:
    session, result = await call_authenticating_uas(tmp_path, FIXTURES / "uas_proxy_auth.xml",
                                                    Credentials("trunk", "pw"))
    assert "Proxy-Authorization" in session.invite.headers
    assert result.successful == 1, result  # the regexp check on Proxy-Authorization passed


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


async def test_call_over_tls(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server_ctx, client_ctx = make_ssl_contexts(str(cert), str(key))
    handler = AnsweringHandler()
    engine = UserAgent(handler=handler,
                       policy=InboundPolicy.from_config(["127.0.0.0/8"], {}, "t"))
    port = free_port()
    local = await engine.start("127.0.0.1", port, ["tls"], tls=(server_ctx, client_ctx),
                               tls_port=port)
    caller = UserAgent(policy=InboundPolicy.from_config(["127.0.0.0/8"], {}, "t"))
    await caller.start("127.0.0.1", free_port(), ["udp", "tls"],
                       tls=(None, client_ctx), tls_port=free_port())
    try:
        assert local["tls"][1] == port
        session = await caller.invite(f"sip:svc@127.0.0.1:{port};transport=tls", ANSWER_SDP)
        resp = await asyncio.wait_for(session.answered, 10)
        assert resp.status == 200
        assert session.dialog is not None
        assert "transport=tls" in str(session.dialog.remote_target)
        await session.bye()
        await asyncio.wait_for(handler.sessions[0].ended, 5)
        assert handler.sessions[0].ended.result().side == "caller"
        conn = next(iter(engine.transports.streams["tls"].connections.values()))
        assert conn.transport is not None
        assert isinstance(conn.transport.get_extra_info("ssl_object"), ssl.SSLObject)
    finally:
        await caller.stop()
        await engine.stop()
