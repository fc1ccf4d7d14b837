"""Certificates for branded caller ID: a test CA (``ivr callerid keygen``), loading PEM chains,
and checking a chain up to configured trust anchors (no network: every certificate a verifier
may need comes from config, keyed by the URL a PASSporT names).

STIR certificates (RFC 8226) carry a TNAuthList extension saying which numbers or which service
provider the key may sign for; the test signer gets one with a service provider code.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ObjectIdentifier

TN_AUTH_LIST_OID = ObjectIdentifier("1.3.6.1.5.5.7.1.26")  # RFC 8226


class ChainError(ValueError):
    """A certificate chain that does not lead to a trust anchor, or is not valid now."""


def tn_auth_list_spc(spc: str) -> bytes:
    """DER of ``TNAuthorizationList ::= SEQUENCE OF TNEntry`` with one ``spc [0]`` entry."""
    ia5 = spc.encode("ascii")
    inner = bytes([0x16, len(ia5)]) + ia5
    entry = bytes([0xA0, len(inner)]) + inner
    return bytes([0x30, len(entry)]) + entry


def _name(org: str, cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_test_ca(name: str = "IVR Test", days: int = 365, spc: str = "1234",
                 now: dt.datetime | None = None
                 ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate,
                            ec.EllipticCurvePrivateKey, x509.Certificate]:
    """(CA key, CA certificate, signer key, signer certificate), all P-256/SHA-256."""
    now = now or dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(name, f"{name} STI Root CA")
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=days * 5))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                       False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    signer = (x509.CertificateBuilder().subject_name(_name(name, f"{name} STI signer"))
              .issuer_name(ca_name).public_key(key.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(now - dt.timedelta(minutes=5))
              .not_valid_after(now + dt.timedelta(days=days))
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .add_extension(x509.KeyUsage(True, False, False, False, False, False, False,
                                           False, False), critical=True)
              .add_extension(x509.UnrecognizedExtension(TN_AUTH_LIST_OID,
                                                        tn_auth_list_spc(spc)), critical=False)
              .sign(ca_key, hashes.SHA256()))
    return ca_key, ca, key, signer


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(path: Path, data: bytes, private: bool = False) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def write_test_ca(folder: Path, *, name: str = "IVR Test", days: int = 365) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, signer = make_test_ca(name, days)
    pem = serialization.Encoding.PEM
    paths = {"ca_key": folder / "ca.key", "ca_cert": folder / "ca.pem",
             "signer_key": folder / "signer.key", "signer_cert": folder / "signer.pem",
             "signer_chain": folder / "signer-chain.pem"}
    _write(paths["ca_key"], _pem_key(ca_key), private=True)
    _write(paths["ca_cert"], ca.public_bytes(pem))
    _write(paths["signer_key"], _pem_key(key), private=True)
    _write(paths["signer_cert"], signer.public_bytes(pem))
    _write(paths["signer_chain"], signer.public_bytes(pem) + ca.public_bytes(pem))
    return paths


def load_key(path: str | Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError(f"{path}: not an EC P-256 private key (ES256 needs one)")
    return key


def load_chain(path: str | Path) -> list[x509.Certificate]:
    certs = x509.load_pem_x509_certificates(Path(path).read_bytes())
    if not certs:
        raise ValueError(f"{path}: no certificate")
    return certs


def verify_chain(chain: list[x509.Certificate], anchors: list[x509.Certificate],
                 at: dt.datetime) -> None:
    """The leaf (``chain[0]``) up to one of ``anchors``: each certificate valid at ``at`` and
    signed by the next (an issuer must be a CA). Raises :class:`ChainError` saying where."""
    if not chain:
        raise ChainError("no certificate")
    anchor_by_subject = {a.subject: a for a in anchors}
    certs = list(chain)
    for i, cert in enumerate(certs):
        if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
            raise ChainError(f"certificate {i} ({cert.subject.rfc4514_string()}) is not "
                             f"valid at {at:%Y-%m-%d %H:%M} UTC")
        if cert in anchors:
            return
        issuer = anchor_by_subject.get(cert.issuer)
        if issuer is None and i + 1 < len(certs):
            issuer = certs[i + 1]
        if issuer is None:
            raise ChainError(f"certificate {i} ({cert.subject.rfc4514_string()}): issuer "
                             f"{cert.issuer.rfc4514_string()} is not a trust anchor")
        try:
            ca = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            ca = False
        if not ca:
            raise ChainError(f"issuer {issuer.subject.rfc4514_string()} is not a CA")
        try:
            cert.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature) as e:
            raise ChainError(f"certificate {i} is not signed by "
                             f"{issuer.subject.rfc4514_string()}") from e
        if issuer in anchors or issuer.subject in anchor_by_subject and \
                anchor_by_subject[issuer.subject] == issuer:
            if not issuer.not_valid_before_utc <= at <= issuer.not_valid_after_utc:
                raise ChainError("the trust anchor is not valid now")
            return
    raise ChainError("the chain does not reach a trust anchor")


def chain_window(chain: list[x509.Certificate], anchors: list[x509.Certificate]
                 ) -> tuple[dt.datetime, dt.datetime]:
    """When every certificate of ``chain`` and every anchor is valid: the window in which a
    chain that :func:`verify_chain` accepted once stays acceptable (its signatures do not
    change; only time can make it invalid). Narrower than needed when the chain carries a
    certificate the path did not use, which only costs a re-check."""
    certs = [*chain, *anchors]
    return (max(c.not_valid_before_utc for c in certs), min(c.not_valid_after_utc for c in certs))
