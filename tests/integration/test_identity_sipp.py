"""Branded caller ID verified on real inbound calls: a SIPp caller sends INVITEs with Identity
headers (RFC 8224) signed under the CA ``ivr callerid keygen`` made; the engine verifies them
with that CA as its trust anchor ([callerid] verify_inbound) and the flow
(examples/flows/branded_caller.json) branches on ``identity.verstat`` and says the verified
name.

Tokens come from the project's own signer (campaigns.branding.Brander) and, for interop, from
PyJWT (a standard JWT library), which also checks the project's token. Every broken variant -
tampered signature, stale iat, a token for another callee, a certificate the engine does not
know, garbage - is answered and fails verification with its reason in the call record; with
``reject_invalid`` the bad one is refused with 438 Invalid Identity Header and the good one is
still answered. Prompts are tones (ToneSpeech); the flow's words are what it asked to say.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from app.config import load_settings
from app.engine import Engine
from campaigns.branding import Brander
from campaigns.certs import load_chain, load_key
from campaigns.passport import parse_identity, sign
from engine.cdr import CallRecord
from storage.tenancy import EVERY_TENANT
from tests.integration.engine_harness import ToneSpeech
from tests.integration.test_console_sipp import engine_env
from tests.netutil import free_port, free_port_block
from tests.sipp import run_sipp_async

pytestmark = [pytest.mark.sipp, pytest.mark.slow, pytest.mark.xdist_group("sipp")]
ROOT = Path(__file__).resolve().parents[2]
CERT_URL = "https://certs.test.invalid/acme-signer.pem"
DEST = "+8613800138000"
NAME, REASON = "Acme 银行", "账单提醒"

# One SIPp scenario for every case; the injection file gives per call: [field0] the calling
# number, [field1] the called number, [field2] the JWS (or anything), [field3] the info URL,
# [field4] the header's name ("Identity", or "X-Nothing" for a call without one). A 438 or 403
# is acknowledged and ends the call; a 200 is acknowledged and the engine's BYE answered.
UAC = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="UAC with an Identity header">
  <send retrans="500"><![CDATA[

      INVITE sip:[field1]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[field0]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[field1]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:[field0]@[local_ip]:[local_port]>
      Max-Forwards: 70
      [field4]: [field2];info=<[field3]>;alg=ES256;ppt=rcd
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000

    ]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="438" optional="true" next="5"/>
  <recv response="403" optional="true" next="5"/>
  <recv response="200" rtd="true"/>
  <send><![CDATA[

      ACK sip:[field1]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[field0]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[field1]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]></send>
  <recv request="BYE"/>
  <send next="9"><![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]></send>
  <label id="5"/>
  <send><![CDATA[

      ACK sip:[field1]@[remote_ip]:[remote_port] SIP/2.0
      [last_Via:]
      From: <sip:[field0]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]></send>
  <label id="9"/>
</scenario>
"""


def keygen(folder: Path) -> dict[str, Path]:
    """The real CLI, as an operator runs it."""
    out = subprocess.run([sys.executable, "-m", "app.cli.main", "callerid", "keygen",
                          str(folder), "--name", "Acme", "--cert-url", CERT_URL],
                         capture_output=True, text=True, check=True, cwd=ROOT, timeout=60)
    paths = dict(line.split(": ", 1) for line in out.stdout.splitlines()
                 if line.startswith(("ca_", "signer_")))
    return {k: Path(v) for k, v in paths.items()}


def pyjwt_token(key_path: Path, orig: str, iat: int) -> str:
    """A PASSporT made by PyJWT, not by us: its JSON is not in our canonical form, which a
    verifier must not care about (it checks the bytes it got)."""
    key = load_key(key_path)
    claims = {"orig": {"tn": orig.lstrip("+")}, "dest": {"tn": [DEST.lstrip("+")]},
              "iat": iat, "rcd": {"nam": NAME, "crn": REASON}}
    return jwt.encode(claims, key, algorithm="ES256",
                      headers={"ppt": "rcd", "typ": "passport", "x5u": CERT_URL})


def cases(paths: dict[str, Path]) -> dict[str, tuple[str, str, str, str]]:
    """calling number -> (case, JWS, header name, info URL)."""
    brander = Brander.from_files(str(paths["signer_key"]), CERT_URL)
    now = int(time.time())

    def own(orig: str, dest: str = DEST, **kw: Any) -> str:
        if kw:
            rcd = {"nam": NAME, "crn": REASON}
            return sign(load_key(paths["signer_key"]), x5u=kw.pop("x5u", CERT_URL), orig=orig,
                        dest=[dest], rcd=rcd, **kw)
        (_, value), *_ = brander.headers(orig, dest, name=NAME, call_reason=REASON)
        return parse_identity(value).passport

    good = own("+861055550101")
    # the project's token is a standard JWT: PyJWT verifies it with the signer's certificate
    signer_cert = load_chain(paths["signer_cert"])[0]
    assert jwt.decode(good, signer_cert.public_key(), algorithms=["ES256"])["rcd"]["nam"] == NAME
    h64, c64, s64 = own("+861055550103").split(".")
    tampered = f"{h64}.{c64}.{s64[:10]}{'A' if s64[10] != 'A' else 'B'}{s64[11:]}"
    stranger = ec.generate_private_key(ec.SECP256R1())
    mallory = "https://certs.test.invalid/mallory.pem"
    unknown = sign(stranger, x5u=mallory,
                   orig="+861055550106", dest=[DEST], iat=now, rcd={"nam": "Police"})
    return {
        "+861055550101": ("valid", good, "Identity", CERT_URL),
        "+861055550102": ("valid_pyjwt", pyjwt_token(paths["signer_key"], "+861055550102", now),
                          "Identity", CERT_URL),
        "+861055550103": ("tampered", tampered, "Identity", CERT_URL),
        "+861055550104": ("stale", own("+861055550104", iat=now - 600), "Identity", CERT_URL),
        "+861055550105": ("wrong_dest", own("+861055550105", dest="+8613900139000", iat=now),
                          "Identity", CERT_URL),
        "+861055550106": ("unknown_cert", unknown, "Identity", mallory),
        "+861055550107": ("garbage", "not-a-passport", "Identity", CERT_URL),
        "+861055550108": ("none", "x", "X-Nothing", CERT_URL),
    }


def engine_for(tmp_path: Path, paths: dict[str, Path], speech: ToneSpeech, **extra: str
               ) -> Engine:
    env = {
        **engine_env(tmp_path),
        "IVR_FLOWS__DEFAULT_FLOW": str(ROOT / "examples/flows/branded_caller.json"),
        "IVR_CALLERID__VERIFY_INBOUND": "true",
        "IVR_CALLERID__TRUST_ANCHORS": json.dumps([str(paths["ca_cert"])]),
        "IVR_CALLERID__CERTS": json.dumps({CERT_URL: str(paths["signer_chain"])}),
        **extra,
    }
    return Engine(load_settings(environ=env), speech=speech)  # type: ignore[arg-type]


async def call_all(tmp_path: Path, paths: dict[str, Path],
                   calls: dict[str, tuple[str, str, str, str]],
                   speech: ToneSpeech | None = None, **extra: str
                   ) -> tuple[Any, dict[str, CallRecord]]:
    """Every call from one SIPp caller into an engine verifying with ``keygen``'s CA."""
    engine = engine_for(tmp_path, paths, speech or ToneSpeech(), **extra)
    await engine.start()
    try:
        return await _call_all(engine, tmp_path, calls)
    finally:
        await engine.stop(drain_s=1.0)


async def _call_all(engine: Engine, tmp_path: Path,
                    calls: dict[str, tuple[str, str, str, str]]
                    ) -> tuple[Any, dict[str, CallRecord]]:
    inf = tmp_path / "calls.csv"
    inf.write_text("SEQUENTIAL\n" + "".join(
        f"{orig};{DEST};{jws};{info};{header}\n"
        for orig, (_, jws, header, info) in calls.items()))
    scenario = tmp_path / "uac_identity.xml"
    scenario.write_text(UAC)
    host, port = engine.addresses["udp"]
    res = await run_sipp_async(f"{host}:{port}", scenario, local_port=free_port(),
                               workdir=tmp_path, limit_s=90,
                               extra=["-inf", str(inf), "-m", str(len(calls)), "-l", "1",
                                      "-mp", str(free_port_block(4))])
    await engine.wait_idle(timeout_s=20)
    assert engine.records is not None
    records = {r.from_number: r for r in engine.records.list(tenants=EVERY_TENANT)}
    return res, records


def identity_of(rec: CallRecord) -> dict[str, Any]:
    (entry,) = [t for t in rec.trace if t["kind"] == "identity"]
    return entry


async def test_inbound_identity_is_verified_and_the_flow_branches_on_it(tmp_path: Path) -> None:
    paths = keygen(tmp_path / "ca")
    calls = cases(paths)
    speech = ToneSpeech()
    res, records = await call_all(tmp_path, paths, calls, speech=speech)
    assert res.successful == len(calls), res.stdout[-2000:] + res.errors
    assert set(records) == set(calls)
    expected = {
        "valid": ("TN-Validation-Passed", "verified"),
        "valid_pyjwt": ("TN-Validation-Passed", "verified"),
        "tampered": ("TN-Validation-Failed", "signature does not verify"),
        "stale": ("TN-Validation-Failed", "iat"),
        "wrong_dest": ("TN-Validation-Failed", "dest.tn"),
        "unknown_cert": ("TN-Validation-Failed", "not available"),
        "garbage": ("TN-Validation-Failed", "malformed Identity header"),
        "none": ("No-TN-Validation", "no Identity header"),
    }
    said = speech.said
    for orig, (case, *_) in calls.items():
        rec = records[orig]
        verstat, reason = expected[case]
        variables = rec.flow_result["variables"]
        # every call is answered and runs the flow, verified or not
        assert rec.disposition == "answered", (case, rec.disposition)
        assert variables["verstat"] == verstat, (case, variables)
        assert reason in variables["identity_reason"], (case, variables)
        entry = identity_of(rec)  # ... and the record's trace says the same
        assert entry["verstat"] == verstat and reason in entry["reason"], (case, entry)
        if verstat == "TN-Validation-Passed":
            assert (variables["brand"], variables["why"]) == (NAME, REASON), case
            assert entry["name"] == NAME
        else:
            assert variables["brand"] == "" and "name" not in entry, case
    assert said.count(f"Verified call from {NAME}: {REASON}.") == 2, said
    assert said.count("The caller ID of this call could not be verified.") == 5, said
    assert said.count("Welcome.") == 1, said


async def test_reject_invalid_answers_438_and_still_takes_good_calls(tmp_path: Path) -> None:
    paths = keygen(tmp_path / "ca")
    every = cases(paths)
    calls = {k: v for k, v in every.items() if v[0] in ("valid", "tampered", "stale", "none")}
    res, records = await call_all(tmp_path, paths, calls, IVR_CALLERID__REJECT_INVALID="true")
    assert res.successful == len(calls), res.stdout[-2000:] + res.errors
    by_case = {calls[orig][0]: rec for orig, rec in records.items()}
    assert by_case["valid"].disposition == "answered"
    assert by_case["none"].disposition == "answered"  # no header is not an invalid one
    tampered, stale = by_case["tampered"], by_case["stale"]
    assert (tampered.disposition, tampered.sip_status) == ("rejected", 438)
    assert identity_of(tampered)["rejected"] == 438
    assert "signature" in identity_of(tampered)["reason"]
    assert (stale.disposition, stale.sip_status) == ("rejected", 403)  # RFC 8224 Stale Date
    assert not tampered.flow_result  # refused before any flow ran
