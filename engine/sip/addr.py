"""Where a SIP message goes or came from: transport kind, host, port."""

from __future__ import annotations

from dataclasses import dataclass

RELIABLE_TRANSPORTS = frozenset({"tcp", "tls"})
DEFAULT_PORTS = {"udp": 5060, "tcp": 5060, "tls": 5061}


@dataclass(frozen=True, slots=True)
class Address:
    transport: str  # "udp" | "tcp" | "tls" (lower case)
    host: str
    port: int

    @property
    def reliable(self) -> bool:
        """Reliable transports get no retransmissions and zero-length wait timers (§17)."""
        return self.transport in RELIABLE_TRANSPORTS

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}:{host}:{self.port}"
