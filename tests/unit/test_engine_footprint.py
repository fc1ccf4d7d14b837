"""What an engine process loads before it takes a call.

Why: every engine process (one per core with ``ivr run --workers N``) pays for each module it
imports, whether its calls use it or not. phonenumbers' geocoder alone holds ~100 MB of area
data and is needed only for local-presence caller-ID pools (campaigns/callerid.area_of); the
media benchmark's answerers grew from ~100 to ~500 MB each partly because it came in with the
campaign wiring. The check runs in a fresh interpreter so other tests' imports do not hide it.
"""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
import app.engine, app.campaign_setup, campaigns.callerid
print(",".join(sorted(m for m in sys.modules if m.startswith("phonenumbers.geo"))))
"""


def test_engine_start_up_imports_leave_the_geocoder_out() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "", f"loaded at start-up: {out.stdout.strip()}"


def test_area_of_still_names_the_area() -> None:
    """The lazy import must not change what local presence sees."""
    from campaigns.callerid import area_of

    assert area_of("+8613800138000") == "86:Beijing"
    assert area_of("+12125550100").startswith("1:")
