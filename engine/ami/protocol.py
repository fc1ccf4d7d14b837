"""One AMI connection's state, sans-IO: bytes in, completed actions and wanted events out.

Correlation: every action carries an ``ActionID`` and its response carries it back. An action
answered by a list (``CoreShowChannels``, ``Status``...) gets ``EventList: start`` in its
response, then events carrying the same ``ActionID``, then one with ``EventList: Complete``; the
action completes with the response and the list. An event naming a finished action (the
``OriginateResponse`` of an asynchronous Originate) is an ordinary event.

Events nobody listens to are dropped after a look at their first line (counted in
``events_dropped``): under a flood of dialplan events the cost per unwanted event is a couple of
byte searches, not a parse. ``wants_event(name, raw)`` sees the raw message too, so a listener
can refuse most events of a name it listens to before they are parsed (``VarSet`` of variables
other than ``IVR_*``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from engine.ami.codec import AmiMessage, AmiParser, event_name, has_action_id


@dataclass(frozen=True, slots=True)
class ActionResult:
    """A completed action: its response, and the list of events when it answered with one."""

    action_id: str
    response: AmiMessage
    events: tuple[AmiMessage, ...] = ()

    @property
    def ok(self) -> bool:
        return (self.response.response or "").lower() in ("success", "follows", "goodbye")

    @property
    def message(self) -> str:
        return self.response.get("Message")


@dataclass(slots=True)
class _Listing:
    response: AmiMessage
    events: list[AmiMessage] = field(default_factory=list)


class AmiSession:
    """Feed it what the socket read; it tells what completed and which events to deliver."""

    def __init__(self, wants_event: Callable[[str, bytes], bool], *,
                 expect_banner: bool = True) -> None:
        self._wants = wants_event
        self._parser = AmiParser(expect_banner=expect_banner)
        self._expected: set[str] = set()
        self._listings: dict[str, _Listing] = {}
        self.events_delivered = 0
        self.events_dropped = 0
        self.stray_responses = 0  # responses to actions nobody waits for (timed out)

    @property
    def banner(self) -> str | None:
        return self._parser.banner

    def expect(self, action_id: str) -> None:
        """An action with this id was sent: route its response and list here."""
        self._expected.add(action_id)

    def forget(self, action_id: str) -> None:
        """Nobody waits for it any more (it timed out): its late answer is dropped."""
        self._expected.discard(action_id)
        self._listings.pop(action_id, None)

    def receive(self, data: bytes) -> tuple[list[ActionResult], list[AmiMessage]]:
        """(actions completed, events wanted) by these bytes, in arrival order each."""
        results: list[ActionResult] = []
        events: list[AmiMessage] = []
        for block in self._parser.feed(data):
            name = event_name(block)
            if name is not None:
                if self._listings and has_action_id(block):
                    msg = AmiMessage.parse(block)
                    listing = self._listings.get(msg.action_id)
                    if listing is not None:
                        listing.events.append(msg)
                        if msg.get("EventList").lower() == "complete":
                            del self._listings[msg.action_id]
                            self._expected.discard(msg.action_id)
                            results.append(ActionResult(msg.action_id, listing.response,
                                                        tuple(listing.events)))
                        continue
                    if self._wants(name, block):
                        self.events_delivered += 1
                        events.append(msg)
                    else:
                        self.events_dropped += 1
                    continue
                if not self._wants(name, block):
                    self.events_dropped += 1
                    continue
                self.events_delivered += 1
                events.append(AmiMessage.parse(block))
                continue
            msg = AmiMessage.parse(block)
            action_id = msg.action_id
            if action_id not in self._expected:
                self.stray_responses += 1
                continue
            if msg.get("EventList").lower() == "start":
                self._listings[action_id] = _Listing(msg)
                continue
            self._expected.discard(action_id)
            results.append(ActionResult(action_id, msg))
        return results, events
