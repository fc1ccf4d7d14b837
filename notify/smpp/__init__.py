"""SMPP 3.4: a sans-IO PDU codec and the asyncio ESME client on top of it."""
