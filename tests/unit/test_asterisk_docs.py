"""docs/asterisk.md shows what the code ships: the dialplan and manager.conf snippets
(``ivr asterisk dialplan``) and the default event filters."""

from __future__ import annotations

from pathlib import Path

from engine.ami.client import DEFAULT_FILTERS
from engine.ami.dialplan import dialplan_snippet, manager_snippet

DOC = (Path(__file__).resolve().parents[2] / "docs" / "asterisk.md").read_text()


def test_docs_show_the_shipped_snippets() -> None:
    assert dialplan_snippet(audiosocket="127.0.0.1:9092") in DOC
    assert manager_snippet(username="ivr", ami_host="127.0.0.1", ami_port=5038,
                           engine_host="127.0.0.1") in DOC
    for line in DEFAULT_FILTERS:
        assert line in DOC
