"""Operational metrics over HTTP: ``/metrics`` (Prometheus text), ``/healthz`` (alive) and
``/readyz`` (taking calls).

What an operator watches: calls in progress and ended (by direction and disposition), SIP
counters that show storms and attacks (parse errors, untrusted sources, retransmissions), the
pacing clock's lateness (the media quality signal), and the per-turn latency histogram from the
speech ledger (caller speech end -> first RTP packet of the answer). Counters for ended calls
come from the event bus, so no call code knows this module exists.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, Protocol

from aiohttp import web

from app.config import Settings, parse_hostport
from core.bus import EventBus, Subscription
from core.tasks import TaskScope
from engine.ami.client import AmiClient
from engine.ami.controller import AsteriskController
from engine.cdr_writer import CdrWriter
from engine.controller import CallController
from engine.rtp.pacer import Pacer
from engine.sip.registration import Registration
from engine.sip.ua import UserAgent

log = logging.getLogger("ivr.metrics")


class MetricsSource(Protocol):
    """What the metrics read from a running engine (``app.engine.Engine`` is one)."""

    settings: Settings
    bus: EventBus
    controller: CallController | None
    asterisk: AsteriskController | None
    ami: AmiClient | None
    ua: UserAgent | None
    registrations: list[Registration]
    pacer: Pacer
    speech: Any
    cdr: CdrWriter | None


class Metrics:
    def __init__(self, engine: MetricsSource) -> None:
        self.engine = engine
        self.ended: Counter[tuple[str, str]] = Counter()  # (direction, disposition)
        self.started: Counter[str] = Counter()  # by direction: rate() of it is the CPS
        self._runner: web.AppRunner | None = None
        self._tasks = TaskScope("metrics")

    async def start(self, listen: str) -> tuple[str, int]:
        sub = self.engine.bus.subscribe("call.", maxsize=10_000)
        self._tasks.spawn(self._count(sub), "bus")
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._health)
        app.router.add_get("/readyz", self._ready)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        host, port = parse_hostport(listen, 9108)
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0]  # the real port when listening on :0
        return str(bound[0]), int(bound[1])

    async def _count(self, sub: Subscription) -> None:
        async for ev in sub:
            if ev.topic == "call.invite":
                self.started[str(ev.data.get("direction", ""))] += 1
            elif ev.topic == "call.ended":
                key = (str(ev.data.get("direction", "")), str(ev.data.get("disposition", "")))
                self.ended[key] += 1

    async def stop(self) -> None:
        await self._tasks.close(grace_s=1.0)
        if self._runner is not None:
            await self._runner.cleanup()

    def _active(self) -> int:
        return sum(len(c.calls) for c in (self.engine.controller, self.engine.asterisk)
                   if c is not None)

    async def _health(self, _request: web.Request) -> web.Response:
        """Alive: the process answers (200 even while draining: do not restart it)."""
        body: dict[str, object] = {"status": "draining" if self._draining() else "ok",
                                   "calls": self._active()}
        if self.engine.ami is not None:
            body["asterisk_ami"] = "connected" if self.engine.ami.connected else "down"
        return web.json_response(body)

    def _draining(self) -> bool:
        e = self.engine
        return ((e.ua is not None and not e.ua.accepting)
                or (e.asterisk is not None and not e.asterisk.accepting))

    async def _ready(self, _request: web.Request) -> web.Response:
        """Ready: new calls are taken now (503 while starting, draining or full), for load
        balancers and orchestrators that route by HTTP rather than SIP OPTIONS."""
        e = self.engine
        backends = [e.ua is not None and e.controller is not None and e.ua.can_take_calls
                    for enabled in (e.settings.sip.enabled,) if enabled]
        if e.settings.asterisk.enabled:
            # without AMI the engine can neither place calls nor transfer: not ready
            backends.append(e.asterisk is not None and e.asterisk.accepting
                            and e.ami is not None and e.ami.connected)
        ready = bool(backends) and all(backends)
        state = "ready" if ready else "draining" if self._draining() else "not_ready"
        return web.json_response({"status": state, "calls": self._active()},
                                 status=200 if ready else 503)

    async def _metrics(self, _request: web.Request) -> web.Response:
        return web.Response(text=self.render(), content_type="text/plain", charset="utf-8")

    @staticmethod
    def _rtp(metric: Any, ctrl: CallController) -> None:
        """RTP quality: what we received (jitter buffers) and what the peers say they received
        from us (their RTCP report blocks), for ended and live calls."""
        live = list(ctrl.calls.values())
        totals = ctrl.rtp_totals.copy()
        for c in live:
            js = c.media.jitter.stats
            totals.update(received=c.media.stats.rx_packets, foreign=c.media.stats.rx_foreign,
                          lost=js.lost, late=js.late)
        metric("ivr_rtp_packets_received_total", "counter", "RTP packets taken from callers.",
               [("", totals["received"])])
        metric("ivr_rtp_packets_lost_total", "counter",
               "Caller packets that never came (jitter buffer), and ones too late to play.",
               [('{kind="lost"}', totals["lost"]), ('{kind="late"}', totals["late"])])
        metric("ivr_rtp_foreign_packets_total", "counter",
               "RTP/RTCP dropped: not from the call's source address, port or SSRC.",
               [("", totals["foreign"])])
        jitter = [c.media.jitter.jitter_s * 1000 for c in live]
        metric("ivr_rtp_jitter_ms", "gauge", "Mean interarrival jitter of live calls' RTP.",
               [("", sum(jitter) / len(jitter) if jitter else 0.0)])
        reports = [c.media.remote_report for c in live if c.media.remote_report is not None]
        metric("ivr_rtcp_remote_fraction_lost", "gauge",
               "Mean share of our packets the peers report lost (their last RTCP reports).",
               [("", sum(r.fraction_lost for r in reports) / 256 / len(reports)
                 if reports else 0.0)])

    def render(self) -> str:
        e = self.engine
        out: list[str] = []

        def metric(name: str, kind: str, help_: str, samples: list[tuple[str, float]]) -> None:
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} {kind}")
            out.extend(f"{name}{labels} {value:g}" for labels, value in samples)

        ctrl = e.controller
        metric("ivr_calls_active", "gauge", "Calls in progress.", [("", self._active())])
        metric("ivr_calls_total", "counter", "Calls started (INVITEs taken or placed); rate() "
               "gives calls per second.",
               [(f'{{direction="{d}"}}', n) for d, n in sorted(self.started.items())])
        metric("ivr_calls_ended_total", "counter", "Calls ended, by direction and disposition.",
               [(f'{{direction="{d}",disposition="{p}"}}', n)
                for (d, p), n in sorted(self.ended.items())])
        if e.ua is not None:
            st = e.ua.stats
            metric("ivr_sip_messages_received_total", "counter", "SIP messages received.",
                   [("", st.received)])
            metric("ivr_sip_parse_errors_total", "counter", "Malformed SIP messages.",
                   [("", st.parse_errors)])
            metric("ivr_sip_refused_over_cps_total", "counter",
                   "INVITEs answered 503 by admission pacing (sip.max_cps).",
                   [("", st.refused_over_cps)])
            metric("ivr_sip_rejected_untrusted_total", "counter",
                   "Requests refused 401/403 (untrusted source or bad credentials).",
                   [("", st.rejected_untrusted)])
            metric("ivr_sip_retransmissions_total", "counter",
                   "Requests and responses the engine had to send again.",
                   [("", e.ua.layer.retransmissions)])
            metric("ivr_sip_responses_total", "counter", "Responses sent, by class.",
                   [(f'{{class="{c}xx"}}', n)
                    for c, n in sorted(e.ua.layer.responses_sent.items())])
            for kind, stream in sorted(e.ua.transports.streams.items()):
                s = stream.stats
                metric(f"ivr_sip_{kind}_connections", "gauge", "Inbound connections open.",
                       [("", stream.inbound)])
                metric(f"ivr_sip_{kind}_refused_total", "counter",
                       "Inbound connections refused by the caps.",
                       [('{reason="per_source"}', s.refused_per_source),
                        ('{reason="global"}', s.refused_global)])
                metric(f"ivr_sip_{kind}_closed_total", "counter",
                       "Connections closed for stalling, idling or garbage.",
                       [('{reason="header_timeout"}', s.closed_header_timeout),
                        ('{reason="idle"}', s.closed_idle),
                        ('{reason="unframeable"}', s.closed_unframeable)])
                metric(f"ivr_sip_{kind}_accept_resource_errors_total", "counter",
                       "accept() failures for lack of file descriptors or memory.",
                       [("", s.accept_resource_errors)])
        if ctrl is not None:
            self._rtp(metric, ctrl)
        if e.ami is not None and e.asterisk is not None:
            ami = e.ami.stats
            metric("ivr_asterisk_ami_connected", "gauge", "1 while logged in to Asterisk's AMI.",
                   [("", 1 if e.ami.connected else 0)])
            metric("ivr_asterisk_ami_disconnects_total", "counter",
                   "AMI connections lost (each followed by reconnection attempts).",
                   [("", ami.disconnects)])
            metric("ivr_asterisk_ami_events_total", "counter",
                   "AMI events read: delivered to a listener, or dropped unread.",
                   [('{result="delivered"}', ami.events_delivered),
                    ('{result="dropped"}', ami.events_dropped)])
            metric("ivr_asterisk_calls_active", "gauge", "Calls on the Asterisk backend.",
                   [("", len(e.asterisk.calls))])
            refused = e.asterisk.server.refused
            metric("ivr_asterisk_audiosocket_refused_total", "counter",
                   "AudioSocket connections refused: not from asterisk.audiosocket_allow, or "
                   "beyond asterisk.max_calls.",
                   [('{reason="untrusted"}', refused["untrusted"]),
                    ('{reason="full"}', refused["full"])])
        if e.registrations:
            metric("ivr_sip_trunk_registered", "gauge",
                   "1 while the trunk's registration is current.",
                   [(f'{{trunk="{r.name}"}}', 1 if r.state == "registered" else 0)
                    for r in e.registrations])
        late = e.pacer.lateness_ms()
        metric("ivr_pacer_tick_lateness_ms", "gauge",
               "How late the media tick ran after its absolute deadline (last 60 s).",
               [(f'{{quantile="{q}"}}', late[k]) for q, k in
                (("0.5", "p50"), ("0.99", "p99"), ("1", "max"))])
        metric("ivr_pacer_skipped_ticks_total", "counter",
               "Media ticks dropped when the loop fell more than 100 ms behind.",
               [("", e.pacer.skipped_ticks)])
        metric("ivr_media_streams", "gauge", "RTP streams the pacer sends.",
               [("", len(e.pacer))])
        if e.cdr is not None:
            metric("ivr_cdr_written_total", "counter", "Call records written.",
                   [("", e.cdr.written)])
            metric("ivr_cdr_queued", "gauge", "Call records waiting to be written.",
                   [("", e.cdr.queued)])
            metric("ivr_cdr_write_failures_total", "counter",
                   "Batches of call records the database refused (retried).",
                   [("", e.cdr.write_failures)])
            metric("ivr_cdr_dead_lettered_total", "counter",
                   "Call records kept in the dead-letter file instead of the database.",
                   [("", e.cdr.dead_lettered)])
        pool = getattr(e.speech, "pool", None)
        if pool is not None:
            metric("ivr_asr_jobs_pending", "gauge",
                   "Recogniser and TTS jobs queued or running (the queue a turn waits in).",
                   [("", pool.pending)])
            metric("ivr_asr_jobs_waiting_for_lane", "gauge",
                   "Jobs waiting for their kind's share of the workers.",
                   [(f'{{lane="{lane}"}}', pool.waiting(lane)) for lane in pool.lane_limits])
            metric("ivr_asr_timeouts_total", "counter", "Jobs that missed their deadline.",
                   [("", pool.timeouts)])
        ledger = getattr(e.speech, "ledger", None)
        text = "\n".join(out) + "\n"
        if ledger is not None:
            text += ledger.prometheus()
        return text
