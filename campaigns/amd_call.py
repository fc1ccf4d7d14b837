"""Answering-machine detection on a live call: the call's audio frames through a VAD and
:class:`campaigns.amd.MachineDetector`, bounded by the injected clock.

Serves both the campaign (``amd.enabled`` in the spec: before the flow starts) and the
``detect_machine`` flow node (``FlowServices.amd``). A key pressed while listening means a
person (machines do not press keys). The frame work (a VAD decision and a 160-point FFT,
~30 µs) stays on the event loop: it is less than the RTP receive path of the same frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from asr.vad import Vad, make_vad
from campaigns.amd import AmdParams, MachineDetector
from campaigns.spec import AmdSpec
from core.call import AudioFrameEvent, Call, CallHungUp, DtmfEvent, HangupEvent
from core.clock import Clock
from flows.services import AmdOutcome

SLACK_S = 1.0  # beyond the analysis time: frames may arrive late (jitter buffer)


class CallMachineDetector:
    def __init__(self, clock: Clock, *, vad: Callable[[], Vad] | None = None,
                 params: AmdParams | None = None) -> None:
        self.clock = clock
        self.vad_factory = vad or (lambda: make_vad("webrtc:2"))
        self.params = params or AmdParams()

    async def detect(self, call: Call, max_s: float = 5.0, wait_for_beep: bool = False,
                     beep_timeout_s: float = 20.0) -> AmdOutcome:
        detector = MachineDetector(_with_total(self.params, max_s), wait_for_beep=wait_for_beep)
        # The detector decides on audio time (``total_ms`` of audio heard -> unknown); this
        # wall-clock limit only guards against audio that stops coming. It allows twice the
        # audio time: on a busy box frames reach the detector late, and a 4 s AMD that gave
        # up after 3.2 s of audio said "unknown" to a person saying hello (seen in CI).
        limit = 2 * (max_s + (beep_timeout_s if wait_for_beep else 0.0)) + SLACK_S
        try:
            await self.clock.wait_for(self._listen(call, detector, beep_timeout_s), limit)
        except TimeoutError:
            pass  # no audio (or not enough): decide on what was heard
        d = detector.decision
        if d is None:
            label = "silence" if detector.t_ms == 0 else "unknown"
            return AmdOutcome(label, detector.t_ms)
        return AmdOutcome(d.label, d.at_ms, detector.beep_end_ms)

    async def _listen(self, call: Call, detector: MachineDetector, beep_timeout_s: float
                      ) -> None:
        vad = self.vad_factory()
        events = call.events()
        try:
            async for ev in events:
                if isinstance(ev, AudioFrameEvent):
                    voiced = vad.prob(ev.pcm) >= 0.5
                    detector.feed(ev.pcm, voiced)
                    if detector.done:
                        return
                    d = detector.decision
                    if d is not None and detector.t_ms - d.at_ms > beep_timeout_s * 1000:
                        return  # no beep came: go on without it
                elif isinstance(ev, DtmfEvent):
                    detector.keypress(ev.digit)
                    return
                elif isinstance(ev, HangupEvent):
                    raise CallHungUp(ev.cause, ev.side)
        finally:
            closer: Any = getattr(events, "aclose", None)
            if closer is not None:
                await closer()


def _with_total(params: AmdParams, max_s: float) -> AmdParams:
    total = int(max_s * 1000)
    return replace(params, total_ms=total,
                   initial_silence_ms=min(params.initial_silence_ms, total))


def campaign_amd(detector: CallMachineDetector) -> Callable[[Call, AmdSpec], Any]:
    """The runner's AMD step (``amd`` in the campaign spec) over the same detector."""

    async def run(call: Call, spec: AmdSpec) -> AmdOutcome:
        return await detector.detect(call, spec.max_s, spec.wait_for_beep, spec.beep_timeout_s)

    return run
