"""AMI event floods next to SIP calls (issue 19): the engine's own SIP/RTP serving six SIPp
callers while Asterisk runs a dialplan loop as fast as it can, in four modes: ``control`` (no
events reach the engine: the CPU load alone), ``default`` (the shipped filters: Asterisk keeps
the flood), ``off`` (no filters: every event arrives and is dropped unparsed) and ``ivr`` (the
loop sets an ``IVR_`` variable, which passes the filters: every event is parsed and
dispatched, the worst case). Prints, per mode, events read, CPU of the engine, its AMI reader
and Asterisk, and the media pacer's lateness (what the SIP callers' audio timing depends on).

    python -m tests.bench.bench_ami_flood [--modes control,default,off,ivr] [--runs 1]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
from pathlib import Path

from tests.asterisk import start_asterisk
from tests.integration.asterisk_harness import FLOOD_MODES, flood_run


async def main(modes: list[str], runs: int) -> None:
    ast = start_asterisk()
    try:
        for _ in range(runs):
            for mode in modes:
                work = Path(tempfile.mkdtemp(prefix=f"ivr-flood-{mode}-"))
                f = await flood_run(work, ast, mode)
                print(f.line(), f"| sipp ok {f.sipp.successful}/6, keys {len(f.digits)}/6",
                      flush=True)
                shutil.rmtree(work, ignore_errors=True)
    finally:
        ast.stop()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--modes", default=",".join(FLOOD_MODES))
    ap.add_argument("--runs", type=int, default=1)
    a = ap.parse_args()
    asyncio.run(main(a.modes.split(","), a.runs))
