"""pocketsphinx 5 with JSGF grammars: the menu recogniser (RTF ~0.02, 6% WER on IVR phrases).

Free-text decoding with the bundled language model is useless on phone audio (70% WER), so this
engine only does ``grammar`` (JSGF text from the node) and ``keywords`` (turned into a JSGF
alternative list). ``bestpath`` is off: lattice rescoring returned out-of-grammar prefixes
("i want to") on G.711 audio where the FSG search alone returned the grammar path.

A ``Decoder`` costs ~130 ms and ~20 MB to build (acoustic model + 134k-word dictionary), too much
per listen, so decoders are kept in a free list per grammar and reused between utterances.
"""

from __future__ import annotations

import hashlib
import re
import threading
from pathlib import Path
from typing import Any

from asr.recognizer import Engine, Mode, RecognizerError, RecognizerOptions, Stream
from audio.pcm import Pcm

NAME = "pocketsphinx"
_WORD_RE = re.compile(r"[a-z][a-z'\-]*")


def keywords_jsgf(keywords: tuple[str, ...]) -> str:
    """A JSGF grammar accepting exactly one of the phrases."""
    phrases = []
    for k in keywords:
        words = _WORD_RE.findall(k.lower())
        if not words:
            raise RecognizerError(NAME, f"keyword {k!r} has no speakable words")
        phrases.append(" ".join(words))
    return "#JSGF V1.0;\ngrammar keywords;\npublic <keyword> = " + " | ".join(phrases) + " ;\n"


class SphinxEngine(Engine):
    name = NAME

    def __init__(self, model_path: str | Path | None = None, max_idle_decoders: int = 8) -> None:
        import pocketsphinx  # noqa: PLC0415 - optional heavy backend, loaded on first use

        self._ps = pocketsphinx
        base = Path(model_path) if model_path else Path(pocketsphinx.get_model_path()) / "en-us"
        hmm = base / "en-us"
        dic = base / "cmudict-en-us.dict"
        if not hmm.is_dir() or not dic.is_file():
            raise RecognizerError(NAME, f"model not found: need {hmm}/ and {dic}")
        self._kwargs: dict[str, Any] = {
            "hmm": str(hmm),
            "dict": str(dic),
            "lm": None,
            "loglevel": "FATAL",
            "bestpath": False,
        }
        self._lock = threading.Lock()
        self._idle: dict[str, list[Any]] = {}
        self._max_idle = max_idle_decoders
        self._probe = self._new_decoder()  # fails fast at load, used for dictionary look-ups

    def supports(self, mode: Mode) -> bool:
        return mode in ("grammar", "keywords")

    def _new_decoder(self) -> Any:
        return self._ps.Decoder(**self._kwargs)

    def check_words(self, grammar: str) -> None:
        """Raise naming the first grammar word the dictionary does not know."""
        body = grammar.split(";", 2)[-1] if grammar.lstrip().startswith("#JSGF") else grammar
        body = re.sub(r"<[^>]*>|\{[^}]*\}|/[0-9.]+/", " ", body)
        body = body.replace("public", " ").replace("grammar", " ")
        with self._lock:
            for w in _WORD_RE.findall(body.lower()):
                if self._probe.lookup_word(w) is None:
                    raise RecognizerError(
                        NAME, f"word {w!r} is not in the pronunciation dictionary"
                    )

    def _checkout(self, grammar: str) -> tuple[str, Any]:
        key = hashlib.sha1(grammar.encode()).hexdigest()
        with self._lock:
            free = self._idle.get(key)
            if free:
                return key, free.pop()
        self.check_words(grammar)
        dec = self._new_decoder()
        try:
            dec.add_jsgf_string("g", grammar)
            dec.activate_search("g")
        except Exception as e:  # pocketsphinx raises RuntimeError/ValueError on bad JSGF
            raise RecognizerError(NAME, f"invalid JSGF grammar: {e}") from e
        return key, dec

    def _checkin(self, key: str, dec: Any) -> None:
        with self._lock:
            free = self._idle.setdefault(key, [])
            if len(free) < self._max_idle:
                free.append(dec)

    def _grammar(self, options: RecognizerOptions) -> str:
        if options.mode == "grammar":
            assert options.grammar is not None  # checked by RecognizerOptions
            return options.grammar
        if options.mode == "keywords":
            return keywords_jsgf(options.keywords)
        raise RecognizerError(NAME, "free text is not supported (use grammar or keywords)")

    def open(self, options: RecognizerOptions) -> Stream:
        key, dec = self._checkout(self._grammar(options))
        return SphinxStream(self, key, dec, options)

    def prewarm(self, options: RecognizerOptions, count: int = 1) -> None:
        """Fill the free list for this grammar with ``count`` decoders (~130 ms each)."""
        grammar = self._grammar(options)
        built = [self._checkout(grammar) for _ in range(count)]
        with self._lock:
            self._max_idle = max(self._max_idle, count)
        for key, dec in built:
            self._checkin(key, dec)


class SphinxStream(Stream):
    """One utterance on a pooled decoder.

    ``close`` can come from the event loop (a hang-up cancels the listen) while a pool thread is
    still inside ``process_raw``; the decoder must not go back to the free list under it. A lock
    guards the decoder, and ``close`` never waits for it: when a job holds it, the job returns
    the decoder as it leaves.
    """

    def __init__(
        self, engine: SphinxEngine, key: str, dec: Any, options: RecognizerOptions
    ) -> None:
        super().__init__(NAME, 16000)
        self._engine = engine
        self._key = key
        self._dec: Any = dec
        self._partials = options.partials
        self._last_partial = ""
        self._lock = threading.Lock()
        self._close_pending = False
        dec.start_utt()

    def _decoder(self) -> Any:
        if self._dec is None:
            raise RecognizerError(NAME, "stream is closed")
        return self._dec

    def _accept(self, pcm: Pcm) -> str | None:
        with self._lock:
            try:
                dec = self._decoder()
                dec.process_raw(pcm.tobytes(), False, False)
                if not self._partials:
                    return None
                hyp = dec.hyp()
                text = hyp.hypstr if hyp is not None else ""
                if text and text != self._last_partial:
                    self._last_partial = text
                    return text
                return None
            finally:
                if self._close_pending:
                    self._release()

    def _final(self) -> tuple[str, float, tuple[str, ...]]:
        with self._lock:
            try:
                dec = self._decoder()
                dec.end_utt()
                hyp = dec.hyp()
                text = hyp.hypstr if hyp is not None else ""
                ok = hyp is not None and text
                # hyp.score: the path score as a 0..1 figure (prob is 1.0 without bestpath).
                # In-grammar phrases score ~0.4-0.9, out-of-grammar speech forced onto the
                # grammar ~0.3-0.6 here: a weak reject signal, not a calibrated probability.
                confidence = min(1.0, max(0.0, float(hyp.score))) if ok else 0.0
                return text, confidence, ()
            finally:
                self._release()

    def close(self) -> None:
        if not self._lock.acquire(blocking=False):
            self._close_pending = True  # a pool job is inside; it releases on its way out
            return
        try:
            self._release()
        finally:
            self._lock.release()

    def _release(self) -> None:
        """Return the decoder to the free list; caller holds the lock."""
        if self._dec is not None:
            dec, self._dec = self._dec, None
            try:
                dec.end_utt()
            except Exception:  # already ended: end_utt raises when no utterance is open
                pass
            self._engine._checkin(self._key, dec)
