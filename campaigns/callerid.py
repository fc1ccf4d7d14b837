"""Caller-ID pools: which number (and name) a callee sees, and the SIP headers that carry it.

A pool is the campaign's list of numbers (validated and normalised to E.164 when the campaign
is checked). Per call it picks one by rotation (round robin, random, least used today),
preferring a number from the callee's own area when ``local_presence`` is on (people answer
local numbers more), skipping numbers at their daily cap or at their concurrency limit. The
daily count is reserved in the database (:meth:`campaigns.store.CampaignStore.reserve_caller_id`)
so it survives a restart and is shared by every node.

Headers (RFC 3325, RFC 3323): the pool number goes in From (with the display name) and, when
asked, in ``P-Asserted-Identity`` as a ``tel:`` URI; ``privacy`` adds a ``Privacy`` header and,
for ``user``/``header``, an anonymous From so the number reaches only the trusted network.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers

from campaigns.spec import CallerIdSpec
from compliance.numbers import InvalidNumber, normalize

ANONYMOUS_USER = "anonymous"
ANONYMOUS_DISPLAY = "Anonymous"


@lru_cache(maxsize=65_536)
def area_of(e164: str) -> str:
    """The area a number belongs to, as far as the numbering plan says: a city for Chinese
    mobiles (their prefix block is allocated per city) and fixed lines, the area code's place
    in NANP. Empty when unknown.

    The geocoder is imported here, not with the module: its data takes ~100 MB of memory,
    which every engine process would pay although only local-presence pools ask for areas."""
    from phonenumbers import geocoder  # noqa: PLC0415 - ~100 MB of data, see above

    try:
        parsed = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return ""
    where = geocoder.description_for_number(parsed, "en")
    if where:
        return f"{parsed.country_code}:{where}"
    ndc = phonenumbers.length_of_geographical_area_code(parsed)
    national = str(parsed.national_number)
    return f"{parsed.country_code}:{national[:ndc]}" if ndc else ""


def check_pool(spec: CallerIdSpec, region: str) -> tuple[list[str], list[str]]:
    """(E.164 pool numbers, problems naming the field)."""
    numbers: list[str] = []
    problems: list[str] = []
    for i, raw in enumerate(spec.numbers):
        try:
            e164 = normalize(raw, region)
        except InvalidNumber as e:
            problems.append(f"caller_id.numbers[{i}]: {raw!r}: {e.reason}")
            continue
        if e164 in numbers:
            problems.append(f"caller_id.numbers[{i}]: {raw!r} is listed twice")
            continue
        numbers.append(e164)
    if spec.privacy in ("user", "header") and spec.display_name:
        problems.append("caller_id.display_name: a private call shows no name "
                        f"(privacy {spec.privacy})")
    return numbers, problems


@dataclass(frozen=True, slots=True)
class Presentation:
    """What one call presents: From user/display and the extra headers."""

    number: str  # the pool number (E.164) or the plain from_user
    from_user: str
    from_display: str | None
    headers: tuple[tuple[str, str], ...]


class CallerIdPool:
    def __init__(self, numbers: Sequence[str], spec: CallerIdSpec, *,
                 rng: random.Random | None = None) -> None:
        self.numbers = list(numbers)
        self.spec = spec
        self._next = 0
        self._rng = rng or random.Random()
        self._areas = {n: area_of(n) for n in self.numbers}
        self.used_today: dict[str, int] = {}  # kept current by the runner (least_used, caps)

    def candidates(self, callee: str, usable: Callable[[str], bool] = lambda n: True
                   ) -> list[str]:
        """Pool numbers in the order to try them for ``callee``: local ones first (when
        local presence is on), each group in rotation order; unusable ones left out."""
        if not self.numbers:
            return []
        n = len(self.numbers)
        if self.spec.rotation == "random":
            order = self.numbers[:]
            self._rng.shuffle(order)
        elif self.spec.rotation == "least_used":
            order = sorted(self.numbers, key=lambda x: self.used_today.get(x, 0))
        else:
            start = self._next % n
            order = self.numbers[start:] + self.numbers[:start]
        order = [x for x in order if usable(x)]
        if self.spec.local_presence:
            area = area_of(callee)
            local = [x for x in order if area and self._areas[x] == area]
            order = local + [x for x in order if x not in local]
        return order

    def chosen(self, number: str) -> None:
        """Round robin moves past the number just used."""
        if number in self.numbers:
            self._next = self.numbers.index(number) + 1

    def presentation(self, number: str | None, display_name: str | None = None,
                     host: str = "invalid") -> Presentation:
        spec = self.spec
        name = display_name if display_name is not None else spec.display_name
        headers: list[tuple[str, str]] = []
        user = number or spec.from_user
        if number and spec.p_asserted_identity:
            shown = f'"{_quoted(name)}" ' if name else ""
            headers.append(("P-Asserted-Identity", f"{shown}<tel:{number}>"))
        if spec.privacy != "none":
            headers.append(("Privacy", spec.privacy))
        if spec.privacy in ("user", "header"):
            return Presentation(number or user, ANONYMOUS_USER, ANONYMOUS_DISPLAY,
                                tuple(headers))
        return Presentation(number or user, user, name, tuple(headers))


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
