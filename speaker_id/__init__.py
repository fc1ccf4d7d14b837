"""Voiceprint enrolment and verification: a pure library (audio in, results out, no telephony).

``SpeakerService`` (service.py) is what the flow nodes, the CLI and the console call; backends
(backends.py) turn audio into vectors; quality.py refuses audio too poor to judge; store.py keeps
voiceprints encrypted per tenant with consent and an audit trail; calibrate.py turns labelled audio
into the threshold the engine uses.
"""

from speaker_id.quality import QualityGate, QualityReport
from speaker_id.service import EnrollResult, SpeakerService, VerifyResult

__all__ = ["EnrollResult", "QualityGate", "QualityReport", "SpeakerService", "VerifyResult"]
