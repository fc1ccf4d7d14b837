"""When to call a contact again: per disposition, with backoff and attempt limits. Pure.

The engine reports how an unanswered call ended in one vocabulary (engine/dispositions.py);
the campaign adds what it learns itself: ``machine`` (answered by a voicemail), and
``network_error`` (the call never left: unreachable trunk, no response, no media ports), which
deserves a quick retry where a ``failed`` 404 deserves none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from campaigns.spec import RetrySpec

NETWORK_CAUSES = ("network_error", "timeout", "no_media_ports", "node_lost")


def attempt_disposition(disposition: str, cause: str, amd: str = "") -> str:
    """The disposition a retry rule is chosen by."""
    if disposition == "answered":
        return "machine" if amd in ("machine", "fax") else "answered"
    if disposition == "failed" and (cause.startswith(NETWORK_CAUSES) or cause == ""):
        return "network_error"
    return disposition


@dataclass(frozen=True, slots=True)
class RetryDecision:
    retry: bool
    at: float | None = None  # wall time of the next attempt
    why: str = ""


def decide(policy: RetrySpec, history: Sequence[str], now: float) -> RetryDecision:
    """``history``: the contact's attempt dispositions so far, the latest last."""
    if not history:
        raise ValueError("history: no attempt yet")
    last = history[-1]
    rule = policy.on.get(last)
    if rule is None:
        return RetryDecision(False, why=f"no retry on {last}")
    if len(history) >= policy.max_attempts:
        return RetryDecision(False, why=f"{len(history)} attempts made "
                                        f"(max_attempts {policy.max_attempts})")
    same = sum(1 for d in history if d == last)  # this disposition's attempts, this one too
    if rule.max_attempts is not None and same >= rule.max_attempts:
        return RetryDecision(False, why=f"{same} attempts ended {last} "
                                        f"(retry.on.{last}.max_attempts {rule.max_attempts})")
    delay = min(rule.delay_s * rule.backoff ** (same - 1), rule.max_delay_s)
    return RetryDecision(True, now + delay, f"{last}: retry in {delay:g} s")
