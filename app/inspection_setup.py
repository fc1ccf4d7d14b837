"""Building inspection from ``[inspection]`` for the engine and the CLI alike.

The sensitive-word rule reads the same word lists as calls and SMS (global + tenant terms);
a call's language, when its trace does not say, comes from its published flow, else
``inspection.language``.
"""

from __future__ import annotations

import logging
from typing import Any

from app.config import Settings, node_id
from core.clock import Clock
from engine.cdr import CallRecord
from inspection.inspector import Inspector
from inspection.queue import JobQueue
from inspection.transcribe import inspection_engine
from inspection.worker import InspectionWorker
from storage import Database

log = logging.getLogger("ivr.inspection")


def build_inspector(settings: Settings, db: Database) -> Inspector:
    """Blocking (opens the word lists): call it off the event loop."""
    from app.compliance_setup import word_registry  # noqa: PLC0415 - compliance loads here
    from flows.store import FlowStore  # noqa: PLC0415

    registry = word_registry(settings)
    flows = FlowStore(db)
    cfg = settings.inspection

    def words_for(tenant: str) -> Any:
        registry.refresh()
        return registry.filter_for(tenant)

    def language_for(rec: CallRecord) -> str:
        if rec.flow_id:
            try:
                doc = flows.get(rec.flow_id, rec.flow_version, tenant=rec.tenant).document
                lang = doc.get("language") if isinstance(doc, dict) else None
                if lang:
                    return str(lang)
            except Exception:  # a flow loaded from a file is not in the store
                log.debug("no stored flow %s for call %s", rec.flow_id, rec.id)
        return cfg.language

    paths = {"whisper": settings.asr.whisper_model_path,
             "whisper-base": settings.asr.whisper_base_model_path}

    def load_engine(name: str) -> Any:
        return inspection_engine(name, paths.get(name), workers=cfg.workers, nice=cfg.nice)

    return Inspector(db, words_for=words_for, language_for=language_for, vad_kind=cfg.vad,
                     default_language=cfg.language, load_engine=load_engine)


def build_worker(settings: Settings, db: Database, clock: Clock) -> InspectionWorker:
    cfg = settings.inspection
    return InspectionWorker(JobQueue(db, max_attempts=cfg.max_attempts),
                            build_inspector(settings, db), clock, owner=node_id(settings),
                            workers=cfg.workers, poll_s=cfg.poll_s, lease_s=cfg.lease_s,
                            sweep_window_s=cfg.sweep_window_s)
