"""What may be sent: templates checked when saved, and the text checked again when sent.

Chinese operators (and Alibaba/Tencent Cloud SMS) only carry templates approved in advance, with
a signature per sender, and they refuse a message whose variables smuggle in a banned word or a
link to an unknown site. So a template is checked for sensitive words and links when it is
saved, and every message is checked again after its variables are filled in: the error names
the blocked term and the variable that brought it in. Templates use the flows' sandboxed
template language (``{{ name }}``, ``{{ amount | money }}``), never Python formatting.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Float, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from flows.expr import ExprError
from flows.template import compile_template
from storage import Base, Database

MAX_TEMPLATE_CHARS = 1000
# a link with a scheme, a www. host, or a bare host followed by a path (t.cn/abc)
_LINK_RE = re.compile(
    r"(?:https?://([^\s/?#:]+)[^\s]*)|(?:\b(www\.[a-z0-9.-]+[a-z])\b)"
    r"|(?:\b((?:[a-z0-9-]+\.)+[a-z]{2,})/[^\s]*)", re.IGNORECASE)


class ContentRefused(ValueError):
    """Text that must not be sent; ``code`` is ``blocked_term``, ``link`` or ``template``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class ScanHit(Protocol):
    @property
    def term(self) -> str: ...


class Scan(Protocol):
    @property
    def blocked(self) -> bool: ...

    @property
    def hits(self) -> Sequence[Any]: ...


class TextChecker(Protocol):
    def scan(self, text: str) -> Scan: ...


WordsFor = Callable[[str], TextChecker]  # tenant -> its sensitive-word checker


def links(text: str) -> list[str]:
    """The host of every link in ``text``, lower-cased."""
    out = []
    for m in _LINK_RE.finditer(text):
        host = next(g for g in m.groups() if g)
        out.append(host.lower().rstrip("."))
    return out


def host_allowed(host: str, allowed: Sequence[str]) -> bool:
    return any(host == d or host.endswith("." + d) for d in (a.lower() for a in allowed))


def _blocked_terms(scan: Scan) -> list[str]:
    terms = []
    for h in scan.hits:
        action = getattr(getattr(h, "action", None), "value", getattr(h, "action", "block"))
        if action == "block":
            terms.append(str(getattr(h, "term", h)))
    return sorted(set(terms)) or ["?"]


@dataclass(frozen=True, slots=True)
class ContentPolicy:
    words: WordsFor | None = None
    allowed_domains: tuple[str, ...] = ()
    links_allowed: bool = True  # False: no link at all, whatever the domain

    def check_template(self, tenant: str, text: str) -> None:
        """At save: the template compiles, its fixed text has no blocked term or stray link."""
        if not text.strip():
            raise ContentRefused("template", "text: empty template")
        if len(text) > MAX_TEMPLATE_CHARS:
            raise ContentRefused("template", f"text: longer than {MAX_TEMPLATE_CHARS} characters")
        try:
            tpl = compile_template(text)
        except ExprError as e:
            raise ContentRefused("template", f"text: {e}") from e
        literal = "".join(p for p in tpl.parts if isinstance(p, str))
        self._check_words(tenant, literal, "template")
        self._check_links(literal, "template")

    def check_text(self, tenant: str, text: str, variables: Mapping[str, Any]) -> None:
        """At send: the filled-in text; a hit is traced to the variable that carried it."""
        self._check_words(tenant, text, "message", variables)
        self._check_links(text, "message")

    def _check_words(self, tenant: str, text: str, where: str,
                     variables: Mapping[str, Any] | None = None) -> None:
        if self.words is None:
            return
        checker = self.words(tenant)
        scan = checker.scan(text)
        if not scan.blocked:
            return
        terms = _blocked_terms(scan)
        culprits = [name for name, value in (variables or {}).items()
                    if isinstance(value, str | int | float) and checker.scan(str(value)).blocked]
        via = f" (from variable {', '.join(sorted(culprits))})" if culprits else ""
        raise ContentRefused("blocked_term",
                             f"{where}: blocked term(s) {', '.join(terms)}{via}")

    def _check_links(self, text: str, where: str) -> None:
        for host in links(text):
            if not self.links_allowed:
                raise ContentRefused("link", f"{where}: links are not allowed ({host})")
            if not host_allowed(host, self.allowed_domains):
                allowed = ", ".join(self.allowed_domains) or "none configured"
                raise ContentRefused("link", f"{where}: link to {host} is not on the allow-list "
                                             f"of domains ({allowed})")


class SmsTemplateRow(Base):
    __tablename__ = "sms_templates"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    template_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    signature: Mapped[str] = mapped_column(String(32), default="")
    purpose: Mapped[str] = mapped_column(String(32), default="notification")
    updated_at: Mapped[float] = mapped_column(Float)


@dataclass(frozen=True, slots=True)
class SmsTemplate:
    tenant: str
    template_id: str
    text: str
    signature: str = ""
    purpose: str = "notification"


_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class TemplateStore:
    """Templates per tenant; :meth:`save` refuses what :class:`ContentPolicy` refuses."""

    def __init__(self, db: Database, policy: ContentPolicy) -> None:
        self.db = db
        self.policy = policy

    def save(self, tpl: SmsTemplate, now: float) -> None:
        if not _ID_RE.match(tpl.template_id):
            raise ContentRefused("template", f"template_id: {tpl.template_id!r} is not "
                                             "1-64 letters, digits, '_', '.', '-'")
        self.policy.check_template(tpl.tenant, tpl.text)
        if tpl.signature:
            self.policy.check_template(tpl.tenant, tpl.signature)
        with self.db.session() as s:
            s.merge(SmsTemplateRow(tenant=tpl.tenant, template_id=tpl.template_id,
                                   text=tpl.text, signature=tpl.signature, purpose=tpl.purpose,
                                   updated_at=now))

    def get(self, tenant: str, template_id: str) -> SmsTemplate | None:
        with self.db.session() as s:
            row = s.get(SmsTemplateRow, (tenant, template_id))
            if row is None:
                return None
            return SmsTemplate(row.tenant, row.template_id, row.text, row.signature, row.purpose)

    def all(self, tenant: str | None = None) -> list[SmsTemplate]:
        with self.db.session() as s:
            q = select(SmsTemplateRow).order_by(SmsTemplateRow.tenant, SmsTemplateRow.template_id)
            if tenant is not None:
                q = q.where(SmsTemplateRow.tenant == tenant)
            return [SmsTemplate(r.tenant, r.template_id, r.text, r.signature, r.purpose)
                    for r in s.scalars(q).all()]


def with_signature(text: str, signature: str) -> str:
    """Chinese carriers require the sender's signature in 【】 at the start of the text."""
    if not signature or text.startswith(f"【{signature}】"):
        return text
    return f"【{signature}】{text}"
