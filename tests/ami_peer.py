"""A scripted AMI peer on loopback for tests that need Asterisk to misbehave on cue (stop
answering, drop the connection right after an action, answer in a chosen order): the real
Asterisk (tests/asterisk.py) cannot be made to. It speaks the wire format through the
project's own codec."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from core.clock import Clock
from engine.ami.client import AmiClient, AmiSettings
from engine.ami.codec import AmiMessage, AmiParser

SECRET = "s3cret"
CHALLENGE = "123456789"


@dataclass
class Peer:
    """One scripted AMI server. ``handler(action, writer)`` answers an action and returns
    True, or returns False to let the default answer it (Challenge/Login/Filter/Ping/Logoff
    as Asterisk does)."""

    handler: Callable[[AmiMessage, asyncio.StreamWriter], bool] | None = None
    actions: list[AmiMessage] = field(default_factory=list)
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    connections: int = 0
    port: int = 0
    server: asyncio.Server | None = None

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        parser = AmiParser(expect_banner=False)
        while data := await reader.read(65536):
            for block in parser.feed(data):
                msg = AmiMessage.parse(block)
                self.actions.append(msg)
                if self.handler is None or not self.handler(msg, writer):
                    self.standard(msg, writer)

    @staticmethod
    def standard(msg: AmiMessage, writer: asyncio.StreamWriter) -> None:
        action, aid = msg.get("Action"), msg.action_id
        if action == "Challenge":
            writer.write(f"Response: Success\r\nActionID: {aid}\r\nChallenge: {CHALLENGE}\r\n\r\n"
                         .encode())
        elif action == "Login":
            key = hashlib.md5((CHALLENGE + SECRET).encode()).hexdigest()
            ok = msg.get("Key") == key or msg.get("Secret") == SECRET
            text = ("Response: Success\r\nMessage: Authentication accepted" if ok else
                    "Response: Error\r\nMessage: Authentication failed")
            writer.write(f"{text}\r\nActionID: {aid}\r\n\r\n".encode())
            if not ok:
                writer.close()
        elif action in ("Filter", "Ping", "CoreSettings"):
            extra = "AsteriskVersion: 23.0.0\r\n" if action == "CoreSettings" else ""
            writer.write(f"Response: Success\r\nActionID: {aid}\r\n{extra}\r\n".encode())
        elif action == "Logoff":
            writer.write(f"Response: Goodbye\r\nActionID: {aid}\r\n\r\n".encode())

    def of(self, action: str) -> list[AmiMessage]:
        return [a for a in self.actions if a.get("Action") == action]

    def drop(self) -> None:
        for w in self.writers:
            w.close()
        self.writers.clear()


@asynccontextmanager
async def peer(handler: Callable[[AmiMessage, asyncio.StreamWriter], bool] | None = None,
               ) -> AsyncIterator[Peer]:
    p = Peer(handler)
    p.server = await asyncio.start_server(p.serve, "127.0.0.1", 0)
    p.port = p.server.sockets[0].getsockname()[1]
    try:
        yield p
    finally:
        p.drop()
        p.server.close()


def client_for(p: Peer, clock: Clock, **kw: object) -> AmiClient:
    settings = AmiSettings(port=p.port, username="ivr", secret=SECRET, **kw)  # type: ignore[arg-type]
    return AmiClient(settings, clock)
