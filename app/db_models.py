"""Every module that declares tables, imported together: what migrations are compared against.

``ivr db revision`` (autogenerate) and the test that the migrations build exactly the models'
schema both read ``Base.metadata`` after importing this module. A new table module goes here.
"""

from __future__ import annotations

import compliance.sql_store
import console.audit
import console.identity
import engine.cdr
import flows.drafts
import flows.store
import notify.content
import notify.outbox
import speaker_id.store
from storage.db import Base

MODEL_MODULES = (compliance.sql_store, console.audit, console.identity, engine.cdr, flows.drafts,
                 flows.store, notify.content, notify.outbox, speaker_id.store)
metadata = Base.metadata
