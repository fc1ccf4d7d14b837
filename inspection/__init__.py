"""Post-call quality inspection (智能质检): transcripts -> rules -> scores -> review.

A library: a finished call's record and stereo recording in, a transcript, rule hits with
evidence and a score out (:mod:`inspection.inspector`); a durable job queue runs it after each
call (:mod:`inspection.queue`, :mod:`inspection.worker`). No telephony.
"""
