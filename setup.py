"""The native modules: the word scanner's inner loops (compliance/_wordscan.c, _fold.c,
_automaton.c, _hits.c, _spelled.c and _untrack.c), the RTP send loop (engine/rtp/_rtpsend.c)
and the RTP receive fast lane (engine/rtp/_rtprecv.c); everything else is in pyproject.toml.
Optional: without a C compiler both run their Python paths."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("compliance._wordscan",
                             ["compliance/_wordscan.c", "compliance/_fold.c",
                              "compliance/_automaton.c", "compliance/_hits.c",
                              "compliance/_spelled.c", "compliance/_untrack.c"],
                             depends=["compliance/_wordscan.h"],
                             extra_compile_args=["-O2", "-std=c11"], optional=True),
                   Extension("engine.rtp._rtpsend", ["engine/rtp/_rtpsend.c"],
                             extra_compile_args=["-O2", "-std=gnu11"], optional=True),
                   Extension("engine.rtp._rtprecv", ["engine/rtp/_rtprecv.c"],
                             extra_compile_args=["-O2", "-std=gnu11"], optional=True)])
