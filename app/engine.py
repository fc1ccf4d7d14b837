"""The engine: config in, running call backends with media, calls and call records out.

Two backends serve calls, either or both (``sip.enabled``, ``asterisk.enabled``): the engine's
own SIP/RTP stack, and an operator's Asterisk over AMI + AudioSocket (``engine.ami``). They
share the pacer, the flows, speech, the bus and the one call-record builder, so a call's record
is the same whichever carried it (its ``backend`` column says which).

Startup order: database -> CDR writer -> SIP transports -> pacer -> controllers. Shutdown is the
reverse and orderly: stop accepting calls (new INVITEs get 503), let running calls finish for
``sip.drain_s``, hang up the rest, stop the pacer, flush the call records.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.config import Settings, node_id, parse_hostport
from app.limits import raise_file_limit
from app.metrics import Metrics
from app.speech import SpeechService
from compliance.word_version import WordChangeSubscriber
from core.bus import EventBus
from core.clock import Clock, SystemClock
from core.rate import TokenBucket
from core.tasks import TaskScope
from engine.ami.client import AmiClient, AmiSettings
from engine.ami.controller import AsteriskController, AsteriskOptions
from engine.cdr import CallRecords
from engine.cdr_builder import CallRecordBuilder
from engine.cdr_writer import CdrWriter
from engine.controller import CallController, MediaOptions, Router
from engine.media.ports import PortAllocator
from engine.rtp.pacer import Pacer
from engine.sip.addr import Address
from engine.sip.endpoint import route_source_ip
from engine.sip.registration import Registration
from engine.sip.security import InboundPolicy
from engine.sip.transport import StreamLimits, make_ssl_contexts
from engine.sip.ua import Credentials, UserAgent
from engine.sipcall import SpeechHooks
from storage import Database, open_database

if TYPE_CHECKING:
    from campaigns.runner import CampaignRunner
    from inspection.worker import InspectionWorker
    from notify.service import SmsService

log = logging.getLogger("ivr.engine")

WARM_UP_S = 30.0  # bound on loading the TTS voice at start-up


class Engine:
    def __init__(self, settings: Settings, *, router: Router | None = None,
                 clock: Clock | None = None, speech: SpeechHooks | None = None,
                 send_sms: bool = True) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.router = router  # None: the flow router from app.wiring
        self.speech = speech
        self.bus = EventBus()
        self.pacer = Pacer()
        self.addresses: dict[str, tuple[str, int]] = {}
        self.ua: UserAgent | None = None
        self.controller: CallController | None = None
        self.asterisk: AsteriskController | None = None
        self.ami: AmiClient | None = None
        self.builder: CallRecordBuilder | None = None
        self.records: CallRecords | None = None
        self.cdr: CdrWriter | None = None
        self.db: Database | None = None
        self.metrics: Metrics | None = None
        self.metrics_address: tuple[str, int] | None = None
        self.registrations: list[Registration] = []
        self.node_id = ""
        self.cluster: Any = None  # app.cluster.Cluster with cluster.redis_url
        self.word_changes: WordChangeSubscriber | None = None  # with compliance.redis_url
        self.sms: SmsService | None = None  # the post-call SMS outbox and sender
        # False for a one-off engine (``ivr call``): it records messages but sends none and
        # leaves the outbox's messages in flight to the engine that is serving
        self.send_sms = send_sms
        self._sms_callbacks: Any = None
        self.inspection: InspectionWorker | None = None  # the post-call inspection queue
        self.campaigns: CampaignRunner | None = None  # the dialler ([campaigns])
        self._tasks = TaskScope("engine")  # registrations, prompt pre-rendering
        self._media_tasks = TaskScope("media")  # the pacer: runs until every call is gone
        self._prewarming: asyncio.Task[int] | None = None

    async def start(self) -> dict[str, tuple[str, int]]:
        s = self.settings
        db = await asyncio.get_running_loop().run_in_executor(
            None, open_database, s.storage.url)
        self.db = db
        await self._start_sms(db)
        if self.router is None:
            # The composition root loads flows, compliance, speech and voiceprint libraries
            # (scipy, model runtimes): only when an engine starts, not with every CLI command.
            from app.sms_setup import FlowSmsSender  # noqa: PLC0415
            from app.wiring import build_services  # noqa: PLC0415

            assert self.sms is not None
            self.router, default_speech = await asyncio.get_running_loop().run_in_executor(
                None, build_services, s, db, self.clock, self.bus, FlowSmsSender(self.sms))
            self.speech = self.speech or default_speech
        self.records = CallRecords(db)
        self.node_id = node_id(s)
        orphans = await asyncio.get_running_loop().run_in_executor(
            None, self.records.mark_orphans, self.node_id, self.clock.wall())
        if orphans:
            log.warning("%d calls this node (%s) left unfinished when it stopped were marked "
                        "node_lost", orphans, self.node_id)
        self.cdr = CdrWriter(self.records, dead_letter=Path(s.storage.dead_letter_path),
                             clock=self.clock)
        self.cdr.start()
        if s.inspection.enabled:
            await self._start_inspection(db)
        if s.sip.enabled:
            await self._start_sip()
        else:
            self.builder = CallRecordBuilder(self.bus, self.cdr.put, node=self.node_id)
        self._media_tasks.spawn(self.pacer.run(self.clock), "pacer")
        if s.cluster.redis_url:
            await self._join_cluster(s.cluster.redis_url)
        if s.compliance.redis_url:
            self._listen_for_word_changes(s.compliance.redis_url)
        if s.asterisk.enabled:
            await self._start_asterisk()
        if s.metrics.listen:
            metrics = Metrics(self)
            try:
                self.metrics_address = await metrics.start(s.metrics.listen)
                self.metrics = metrics
            except OSError as e:  # e.g. `ivr call` next to a running engine: calls matter more
                await metrics.stop()
                log.warning("metrics not served on %s: %s", s.metrics.listen, e)
        try:
            await self._start_campaigns()
        except Exception:  # inbound calls are already being answered: keep answering them
            log.exception("campaigns: the dialler did not start; no campaign calls on this node")
        if isinstance(self.speech, SpeechService):
            await self._prewarm(self.speech)
        # Everything loaded so far (modules, models, config) lives as long as the process:
        # keep it out of the collector's full scans, which otherwise pause media for 50-160 ms
        # with 1,000 calls (measured, docs/benchmarks.md).
        gc.freeze()
        return self.addresses

    async def _start_sip(self) -> None:
        s = self.settings
        assert self.cdr is not None
        policy = InboundPolicy.from_config(
            s.sip.trusted_peers, {u.username: u.password for u in s.sip.users}, s.sip.realm)
        proxy = None
        if s.sip.outbound_proxy:
            host, port = parse_hostport(s.sip.outbound_proxy)
            proxy = Address("udp", host, port)
        budget = raise_file_limit()
        limits = StreamLimits(
            max_connections=s.sip.tcp_max_connections or budget.tcp_connections,
            max_per_source=s.sip.tcp_max_per_source, header_timeout_s=s.sip.tcp_header_timeout_s,
            idle_timeout_s=s.sip.tcp_idle_timeout_s)
        self.ua = UserAgent(policy=policy, user_agent=s.sip.user_agent, clock=self.clock,
                            max_size=s.sip.max_message_bytes, max_calls=s.sip.max_calls,
                            outbound_proxy=proxy, advertise_host=s.sip.advertise_host,
                            stream_limits=limits, admission=admission_bucket(s))
        host, port = parse_hostport(s.sip.listen)
        tls = None
        if "tls" in s.sip.transports:
            tls = make_ssl_contexts(s.sip.tls_cert, s.sip.tls_key)
        self.addresses = await self.ua.start(host, port, list(s.sip.transports), tls=tls)
        local_host = host if host not in ("0.0.0.0", "::") else route_source_ip("8.8.8.8")
        media_ip = s.sip.advertise_host or local_host  # what SDP advertises
        options = MediaOptions(
            local_ip=media_ip, codecs=tuple(s.rtp.codecs), media_timeout_s=s.rtp.media_timeout_s,
            symmetric=s.rtp.symmetric, record_calls=s.rtp.record_calls,
            recordings_dir=Path(s.storage.recordings_dir), inband_dtmf=s.rtp.inband_dtmf,
            strict_source=s.rtp.strict_source, bind_ip=s.rtp.bind_address or local_host)
        assert self.router is not None
        from app.campaign_setup import identity_checker  # noqa: PLC0415 - crypto when used

        identity = await asyncio.get_running_loop().run_in_executor(
            None, identity_checker, s, self.clock)
        self.controller = CallController(
            ua=self.ua, pacer=self.pacer, ports=PortAllocator(s.rtp.port_min, s.rtp.port_max),
            clock=self.clock, cdr=self.cdr, router=self.router, options=options, bus=self.bus,
            speech=self.speech, node=self.node_id, identity=identity)
        for trunk in s.sip.trunks:
            reg = Registration(trunk.name, self.ua, trunk.registrar,
                               trunk.aor_user or trunk.username,
                               Credentials(trunk.username, trunk.password), self.clock,
                               trunk.expires)
            self.registrations.append(reg)
            self._tasks.spawn(reg.run(), f"register-{trunk.name}")
        self.builder = self.controller.records

    async def _start_asterisk(self) -> None:
        """AMI (connecting in the background, reconnecting for ever) and the AudioSocket
        server. Calls work without AMI too, with less to go on (docs/asterisk.md)."""
        a, s = self.settings.asterisk, self.settings
        assert self.router is not None and self.builder is not None
        self.ami = AmiClient(AmiSettings(
            host=a.ami_host, port=a.ami_port, username=a.username, secret=a.secret,
            auth=a.auth, events=a.events, filters=tuple(a.event_filters),
            ping_interval_s=a.ping_interval_s, reconnect_max_s=a.reconnect_max_s,
            action_timeout_s=a.action_timeout_s), self.clock)
        host, port = parse_hostport(a.audiosocket_listen, 9092)
        options = AsteriskOptions(
            audiosocket_host=host, audiosocket_port=port,
            audiosocket_advertise=a.audiosocket_advertise,
            transfer_context=a.transfer_context or None, outbound_context=a.outbound_context,
            dial_template=a.dial_template, channel_wait_s=a.channel_wait_s,
            end_grace_s=a.end_grace_s, media_timeout_s=s.rtp.media_timeout_s,
            record_calls=s.rtp.record_calls, recordings_dir=Path(s.storage.recordings_dir),
            audiosocket_allow=tuple(a.audiosocket_allow), max_calls=a.max_calls)
        prompts = self.controller.prompts if self.controller is not None else None
        self.asterisk = AsteriskController(
            ami=self.ami, pacer=self.pacer, clock=self.clock, router=self.router,  # type: ignore[arg-type]
            options=options, bus=self.bus, records=self.builder, speech=self.speech,
            prompts=prompts)
        self.addresses["audiosocket"] = await self.asterisk.start()
        self.ami.start()

    def _listen_for_word_changes(self, url: str) -> None:
        """Other nodes' word-list edits reach this node's filters at once (pub/sub), not at
        the next poll."""
        from redis.asyncio import Redis  # noqa: PLC0415 - only with compliance.redis_url

        self.word_changes = WordChangeSubscriber(Redis.from_url(url), self.clock)
        self._tasks.spawn(self.word_changes.run(), "word-changes")

    async def _join_cluster(self, url: str) -> None:
        from redis.asyncio import Redis  # noqa: PLC0415 - only for a cluster

        from app.cluster import Cluster  # noqa: PLC0415

        assert self.records is not None
        self.cluster = Cluster(Redis.from_url(url), self.node_id, self.bus, self.clock,
                               unfinished_nodes=self.records.unfinished_nodes,
                               mark_orphans=self.records.mark_orphans)
        await self.cluster.start()

    async def _start_sms(self, db: Database) -> None:
        """The outbox and its sender; rule messages from call events on the bus."""
        from app.sms_setup import build_sms_service, start_callbacks  # noqa: PLC0415

        s = self.settings
        self.sms = await asyncio.get_running_loop().run_in_executor(
            None, build_sms_service, s, db, self.clock, self.bus)
        await self.sms.start(dispatch=self.send_sms and s.sms.gateway != "none")
        self.sms.attach(self.bus)
        self._sms_callbacks = await start_callbacks(s, self.sms)

    async def _start_inspection(self, db: Database) -> None:
        """The post-call queue: jobs from ``call.ended``, inspections in their own pool."""
        from app.inspection_setup import build_worker  # noqa: PLC0415 - models load lazily

        self.inspection = await asyncio.get_running_loop().run_in_executor(
            None, build_worker, self.settings, db, self.clock)
        await self.inspection.start(self.bus)

    async def _start_campaigns(self) -> None:
        """The dialler, when trunks are configured: settles attempts a killed predecessor left
        dialling (never dialled again), then dials running campaigns."""
        from app.campaign_setup import build_runner, campaign_dialler  # noqa: PLC0415

        dialler = campaign_dialler(self.settings.campaigns.backend, self.controller,
                                   self.asterisk)
        if self.db is None or dialler is None:
            return
        db = self.db
        runner = await asyncio.get_running_loop().run_in_executor(
            None, lambda: build_runner(self.settings, db=db, dialler=dialler,
                                       clock=self.clock, bus=self.bus, node=self.node_id,
                                       sms_service=self.sms,
                                       speech=self.speech if isinstance(
                                           self.speech, SpeechService) else None))
        if runner is None:
            return
        self.campaigns = runner
        if self.cluster is not None:  # a dead node's attempts are settled by a survivor
            from app.cluster import OrphanOwner, off_loop  # noqa: PLC0415

            self.cluster.add_orphan_owner(OrphanOwner(
                "campaign attempts settled as interrupted", off_loop(runner.store.dialing_nodes),
                runner.settle_node))
            if runner.shared is not None:
                self.cluster.add_orphan_owner(OrphanOwner(
                    "campaign pacing slots freed", runner.shared.nodes_holding,
                    runner.forget_shared_slots))
        interrupted = await runner.start()
        log.info("campaigns: dialler started (%d interrupted attempts settled)", interrupted)

    async def _prewarm(self, speech: SpeechService) -> None:
        """Load the voice before the first caller (its first render is the slow one, ~0.7 s
        idle, many seconds on a busy box), then render the other static prompts meanwhile."""
        from app.wiring import prompts_to_prewarm, recognisers_to_preload  # noqa: PLC0415

        assert self.db is not None
        loop = asyncio.get_running_loop()
        engines = await loop.run_in_executor(None, recognisers_to_preload, self.settings,
                                             self.db)
        if engines:
            try:
                await self.clock.wait_for(speech.preload(engines), 4 * WARM_UP_S)
            except TimeoutError:
                log.warning("recognisers still loading after %.0f s; first turns may wait",
                            4 * WARM_UP_S)
        prompts = await loop.run_in_executor(None, prompts_to_prewarm, self.settings, self.db)
        if not prompts:
            return
        try:
            await self.clock.wait_for(speech.prewarm(prompts[:1]), WARM_UP_S)
        except TimeoutError:
            log.warning("TTS warm-up took over %.0f s; first calls may wait for synthesis",
                        WARM_UP_S)
        if len(prompts) > 1:
            self._prewarming = self._tasks.spawn(speech.prewarm(prompts[1:]), "tts-prewarm")

    async def wait_prewarmed(self, timeout_s: float = 60.0) -> bool:
        """Wait until every static prompt is rendered (started by ``start``); True if so.
        Tests use it so that a caller's timing does not depend on synthesis speed."""
        task = self._prewarming
        if task is None or task.done():
            return True
        done, _ = await asyncio.wait({task}, timeout=timeout_s)
        return bool(done)

    async def wait_idle(self, timeout_s: float = 10.0) -> None:
        """Wait until every call has ended and its record is written (tests, drain)."""
        assert self.cdr is not None
        if self.controller is not None:
            await self.controller.tasks.wait(timeout_s)
        if self.asterisk is not None:
            await self.asterisk.tasks.wait(timeout_s)
        await self.cdr.flush()

    async def stop(self, drain_s: float | None = None) -> None:
        """Orderly: refuse new calls (503), stop trunk refreshes and unregister, let calls run
        for the drain time, hang up the rest (cause ``shutdown``), write every call record."""
        drain = self.settings.sip.drain_s if drain_s is None else drain_s
        if self.ua is not None:
            self.ua.stop_accepting()
        if self.campaigns is not None:
            self.campaigns.halt()  # no new campaign calls; those in flight drain below
        if self.asterisk is not None:
            self.asterisk.stop_accepting()  # AudioSocket() fails: the dialplan goes on
        await self._tasks.close(grace_s=1.0)  # stop refreshing registrations
        if self.word_changes is not None:
            await self.word_changes.redis.aclose()
        for reg in self.registrations:
            await reg.unregister()
        scopes = [c.tasks for c in (self.controller, self.asterisk) if c is not None]
        await asyncio.gather(*(scope.wait(drain) for scope in scopes))
        if self.controller is not None:
            for call in list(self.controller.calls.values()):  # drain time is up
                await call.hangup("shutdown")  # BYE now; the flow sees CallHungUp and ends
            await self.controller.tasks.wait(2.0)  # let teardown publish each call's end
            if self.campaigns is not None:  # record the outcome of every campaign call
                await self.campaigns.stop(grace_s=2.0)
            await self.controller.stop(drain_s=2.0)
        if self.asterisk is not None:
            await self.asterisk.stop(drain_s=0.0)  # hangs up what is left
        if self.ami is not None:
            await self.ami.close()
        if self.controller is None and self.builder is not None:
            self.builder.close()
        if self.ua is not None:
            await self.ua.stop(drain_s=2.0)
        self.pacer.stop()
        await self._media_tasks.close(grace_s=1.0)
        if self.cluster is not None:
            await self.cluster.stop()
        if self.cdr is not None:
            await self.cdr.close()
        if self.inspection is not None:  # after the records: the last calls' jobs are due
            await self.inspection.stop()
        if self.sms is not None:  # after the calls: their hang-up messages are recorded
            await self.sms.stop()
        if self._sms_callbacks is not None:
            await self._sms_callbacks.stop()
        if self.metrics is not None:
            await self.metrics.stop()


def admission_bucket(s: Settings) -> TokenBucket | None:
    """``sip.max_cps`` as a token bucket (None: no admission pacing)."""
    if s.sip.max_cps is None:
        return None
    return TokenBucket(s.sip.max_cps, s.sip.cps_burst or max(1.0, s.sip.max_cps))
