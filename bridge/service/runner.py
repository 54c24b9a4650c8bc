"""`vibes-bridge run`: wire Kafka, the engine, delivery and the management port, then serve.

The only place that builds every part. Two threads of control own the work:
the consumer thread (``consumer_loop``, which also serves the dead-letter
producer's acknowledgements) and the asyncio loop on the main thread (delivery,
the listeners, reload, the fleet budget, signals). Beside them run threads that
only wait: short blocking calls (``blocking.call_blocking``), the callback
producer's poller, the Schema Registry client's loop thread, librdkafka's
own, and with tracing on the span exporter (``bridge.tracing``). SIGTERM or
SIGINT ends the run gracefully: stop fetching, let in-flight work finish within
``delivery.shutdown_timeout_seconds``, commit what finished, close, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

from bridge.codecs import Decoder
from bridge.delivery import Deliverer, VibesClient
from bridge.delivery.aimd import AdaptiveLimiter
from bridge.kafka.budget_topic import BudgetLink
from bridge.kafka.config import KafkaClientConfig, consumer_config
from bridge.kafka.consumer import KafkaSource
from bridge.kafka.producer import AcknowledgedProducer, DeadLetterProducer
from bridge.loading import LoadedBridge
from bridge.mapping.engine import Engine
from bridge.metrics import BridgeMetrics
from bridge.service.allocator import glibc_malloc_trim, release_freed_memory
from bridge.service.blocking import call_blocking
from bridge.service.callback_receiver import CallbackReceiver
from bridge.service.consumer_loop import ConsumerLoop, LoopSettings
from bridge.service.dispatch import Dispatcher, Parking
from bridge.service.fleet_budget import FleetBudget
from bridge.service.health import Health
from bridge.service.management import ManagementServer
from bridge.service.offsets import Finisher, OffsetTracker, TicketRoutes
from bridge.service.outbox import DeadLetterOutbox
from bridge.service.parking import ParkingPolicy, prepare_parked
from bridge.service.record_work import RecordWork
from bridge.service.reload import ConfigReloader, RulesTarget
from bridge.service.sizing import SizeLimits, learn_size_limits
from bridge.service.vibes_delivery import company_rates, vibes_delivery
from bridge.tracing import NO_TRACING, Tracing, start_tracing

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
_HEARTBEAT_SECONDS = 1.0
_TOPIC_RECHECK_SECONDS = 15.0
# Closing the consumer and flushing dead letters after the drain deadline.
_CLOSE_ALLOWANCE_SECONDS = 15.0
# Callbacks still queued at shutdown were answered 503 or are about to be: short.
_CALLBACK_FLUSH_SECONDS = 5.0
# Spans still buffered at shutdown: exported within this, or dropped.
_TRACE_FLUSH_SECONDS = 5.0


@dataclass(slots=True)
class Service:
    """The running parts, for the run command and for tests that drive a service in-process."""

    loaded: LoadedBridge
    metrics: BridgeMetrics
    health: Health
    tracker: OffsetTracker
    client: VibesClient
    deliverer: Deliverer
    dispatcher: Dispatcher
    outbox: DeadLetterOutbox
    consumer: ConsumerLoop
    management: ManagementServer
    limiter: AdaptiveLimiter
    fleet: FleetBudget
    callbacks: CallbackService | None = None
    tracing: Tracing = NO_TRACING
    parking: ParkingService | None = None


@dataclass(slots=True)
class ParkingService:
    """The parked topic's consumer and the policy (``delivery.parking``, docs/isolation.md)."""

    policy: ParkingPolicy
    consumer: ConsumerLoop


@dataclass(slots=True)
class CallbackService:
    """The callback receiver and its producer (``callbacks:`` in the file)."""

    receiver: CallbackReceiver
    producer: AcknowledgedProducer

    async def stop(self) -> None:
        """Stop taking requests, then wait a little for records still on their way."""
        await self.receiver.stop()
        await call_blocking(self.producer.close, _CALLBACK_FLUSH_SECONDS)


async def run_service(loaded: LoadedBridge, *, stop: asyncio.Event | None = None) -> int:
    """Serve until SIGTERM/SIGINT (or ``stop``); the exit status."""
    stop = stop if stop is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(signum, stop.set)
    # Before anything is consumed: a dead letter that cannot fit is a ConfigError (exit 2).
    limits = await call_blocking(learn_size_limits, loaded)
    service = _build(loaded, loop, limits)
    settings = loaded.settings
    bound = await _start_listeners(service)
    if bound is None:
        return EXIT_FAILED
    host, port = bound
    producer_ok = await call_blocking(service.outbox.topic_exists)
    service.health.dead_letter_topic_missing = not producer_ok
    if not producer_ok:
        log.error(
            "the dead-letter topic does not exist; records that need it will wait",
            extra={"topic": settings.dead_letter.topic},
        )
    await _check_receipts_topic(service)
    parked_done = await _start_parking(service)
    log.info(
        "vibes-bridge running",
        extra={
            "group_id": settings.kafka.group_id,
            "topics": sorted(loaded.decoders),
            "management": f"http://{host}:{port}",
        },
    )
    reloader = ConfigReloader(
        loaded,
        RulesTarget(
            _rules_user(service),
            service.fleet.set_budget,
            None if service.callbacks is None else service.callbacks.receiver.apply,
        ),
        service.metrics,
    )
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGHUP, lambda: reloader.request(force=True))
    consumer_done = asyncio.ensure_future(call_blocking(service.consumer.run))
    heartbeat = asyncio.ensure_future(_heartbeat(service))
    releasing = asyncio.ensure_future(release_freed_memory(glibc_malloc_trim()))
    reloading = [asyncio.ensure_future(reloader.serve()), asyncio.ensure_future(reloader.watch())]
    fleet = asyncio.ensure_future(service.fleet.run())
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait((consumer_done, stopping), return_when=asyncio.FIRST_COMPLETED)
    status = EXIT_OK
    if consumer_done.done() and consumer_done.exception() is not None:
        log.error("the consumer loop failed", exc_info=consumer_done.exception())
        status = EXIT_FAILED
    log.info("stopping")
    service.health.stopping = True
    timeout = settings.delivery.shutdown_timeout_seconds + _CLOSE_ALLOWANCE_SECONDS
    await _stop_consumers(service, [consumer_done, parked_done], timeout)
    for task in (heartbeat, releasing, stopping, fleet, *reloading):
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await fleet
    with contextlib.suppress(Exception):
        await service.fleet.close()
    if service.callbacks is not None:
        await service.callbacks.stop()
    await service.dispatcher.cancel_all()
    await service.client.aclose()
    await service.management.stop()
    await _stop_tracing(service.tracing)
    reloader.current.close()
    log.info("stopped", extra={"exit_status": status})
    return status


async def _check_receipts_topic(service: Service) -> None:
    """Readiness names a missing receipts topic; records that need a receipt wait for it."""
    was_missing = service.health.receipts_topic_missing
    exists = await call_blocking(service.outbox.receipts_topic_exists)
    service.health.receipts_topic_missing = not exists
    if not exists and not was_missing:
        log.error(
            "the receipts topic does not exist; records whose events were accepted will wait",
            extra={"topic": service.outbox.receipts_topic},
        )


async def _stop_consumers(
    service: Service, running: list[asyncio.Future[None] | None], timeout: float
) -> None:
    """Ask the consumer threads (the parking one too) to drain, and wait for them at once."""
    service.consumer.stop()
    if service.parking is not None:
        service.parking.consumer.stop()
    threads = [future for future in running if future is not None]
    with contextlib.suppress(Exception):
        await asyncio.wait_for(asyncio.shield(asyncio.gather(*threads)), timeout)


async def _start_parking(service: Service) -> asyncio.Future[None] | None:
    """Start the parking consumer when the parked topic exists; else parking stays off
    (a single-company deployment runs as before) and one warning says what is needed."""
    parking = service.parking
    if parking is None:
        return None
    if not await call_blocking(service.outbox.parking_topic_exists):
        parking.policy.available = False
        log.warning(
            "the parked topic does not exist: parking is off, so a company key that stays "
            "paused holds back the others once max_pending_records is reached; create the "
            "topic (or set delivery.parking.enabled: false) and restart",
            extra={"topic": service.outbox.parking_topic},
        )
        return None
    return asyncio.ensure_future(call_blocking(parking.consumer.run))


async def _start_listeners(service: Service) -> tuple[str, int] | None:
    """Bind the management port, then the callback receiver; the management address.

    A port in use (or a host that is not this machine's, a port below 1024 without
    the right) is one error line naming the key, and None; what started is closed.
    """
    settings = service.loaded.settings
    management = settings.management
    try:
        bound = await service.management.start(management.host, management.port)
    except OSError as exc:
        _cannot_listen("management.port", management.host, management.port, exc)
        await _close_unstarted(service)
        return None
    callbacks = settings.callbacks
    if service.callbacks is not None and callbacks is not None:
        try:
            await service.callbacks.receiver.start()
        except OSError as exc:
            _cannot_listen("callbacks.port", callbacks.host, callbacks.port, exc)
            await _close_unstarted(service)
            return None
    return bound


def _cannot_listen(key: str, host: str, port: int, exc: OSError) -> None:
    # errno's text, not aiohttp's message: one short reason, the same on every platform.
    reason = os.strerror(exc.errno) if exc.errno else type(exc).__name__
    log.error(
        "cannot listen on %s (%s:%d): %s; the bridge did not start",
        key,
        host,
        port,
        reason.lower(),
        extra={"setting": key, "port": port},
    )


async def _close_unstarted(service: Service) -> None:
    """Close what ``_build`` opened when the service cannot start (nothing consumed yet)."""
    if service.callbacks is not None:
        await service.callbacks.stop()
    await service.client.aclose()
    await service.management.stop()  # safe when it never bound
    await _stop_tracing(service.tracing)
    service.loaded.close()


async def _stop_tracing(tracing: Tracing) -> None:
    """Export the spans still buffered, within a bound (a collector may be unreachable)."""
    if not tracing.enabled:
        return
    with contextlib.suppress(Exception):
        await asyncio.wait_for(
            call_blocking(tracing.shutdown, _TRACE_FLUSH_SECONDS), _TRACE_FLUSH_SECONDS + 1.0
        )


def _build(loaded: LoadedBridge, loop: asyncio.AbstractEventLoop, limits: SizeLimits) -> Service:
    settings = loaded.settings
    metrics = BridgeMetrics()
    health = Health()
    tracker = OffsetTracker()
    parking_settings = settings.delivery.parking
    parked_tracker = OffsetTracker()
    tickets: Finisher = (
        TicketRoutes(tracker, {parking_settings.topic: parked_tracker})
        if settings.parks_events()
        else tracker
    )
    consumer_settings = consumer_config(settings.kafka)
    producer_settings = limits.dead_letter_config
    callback_warnings = limits.callback_config.warnings if limits.callback_config else ()
    warnings = (*consumer_settings.warnings, *producer_settings.warnings, *callback_warnings)
    for warning in dict.fromkeys(warnings):  # the producers share most of theirs
        log.warning(warning)
    tracing = start_tracing(
        settings.tracing, vibes_base_url=settings.vibes.base_url, group_id=settings.kafka.group_id
    )
    if tracing.enabled:
        log.info("tracing on: spans are exported over OTLP/HTTP")
    client, limiter, deliverer = vibes_delivery(loaded, metrics.delivery, tracing)
    fleet = _fleet(loaded, limiter, metrics, consumer_settings, producer_settings)
    outbox = DeadLetterOutbox(
        DeadLetterProducer(producer_settings.settings, settings.dead_letter.topic),
        tickets,
        metrics,
        health,
        max_record_bytes=limits.dead_letter_record_bytes,
        receipts_topic=None if settings.receipts is None else settings.receipts.topic,
        parking_topic=parking_settings.topic if settings.parks_events() else None,
    )
    policy = ParkingPolicy(
        after_seconds=parking_settings.after.total_seconds(),
        waiting_limit=max(1, settings.delivery.max_pending_records // 2),
    )
    dispatcher = Dispatcher(
        deliverer,
        tickets,
        outbox,
        outcomes=metrics.delivery,
        max_in_flight=settings.delivery.max_in_flight,
        receipts=None if settings.receipts is None else outbox,
        parking=Parking(policy, outbox, parking_settings.topic)
        if settings.parks_events()
        else None,
    )
    consumer = ConsumerLoop(
        source_factory=lambda listener: KafkaSource(
            consumer_settings.settings, sorted(loaded.decoders), listener
        ),
        work=RecordWork(tracker, outbox, metrics),
        outbox=outbox,
        rules=(loaded.decoders, loaded.engine),
        dispatcher=dispatcher,
        loop=loop,
        metrics=metrics,
        health=health,
        settings=LoopSettings.from_delivery(settings.delivery),
        tracing=tracing,
    )
    parking = None
    if settings.parks_events():
        parked_settings = consumer_config(
            settings.kafka, group_id=f"{settings.kafka.group_id}.parked"
        ).settings
        # Its own metrics and health: its records are not the source topics' records.
        parked_metrics = BridgeMetrics()
        parking = ParkingService(
            policy,
            ConsumerLoop(
                source_factory=lambda listener: KafkaSource(
                    parked_settings, [parking_settings.topic], listener
                ),
                work=RecordWork(parked_tracker, outbox, parked_metrics),
                outbox=outbox,
                rules=(loaded.decoders, loaded.engine),
                dispatcher=dispatcher,
                loop=loop,
                metrics=parked_metrics,
                health=Health(),
                settings=LoopSettings.from_delivery(settings.delivery),
                prepare_record=prepare_parked,
            ),
        )
    management = ManagementServer(metrics, health)
    return Service(
        loaded,
        metrics,
        health,
        tracker,
        client,
        deliverer,
        dispatcher,
        outbox,
        consumer,
        management,
        limiter,
        fleet,
        _build_callbacks(loaded, metrics, loop, limits, tracing),
        tracing,
        parking,
    )


def _build_callbacks(
    loaded: LoadedBridge,
    metrics: BridgeMetrics,
    loop: asyncio.AbstractEventLoop,
    limits: SizeLimits,
    tracing: Tracing,
) -> CallbackService | None:
    settings = loaded.settings.callbacks
    config = limits.callback_config
    if settings is None or loaded.callback_token is None or config is None:
        return None
    producer = AcknowledgedProducer(config.settings, loop)
    receiver = CallbackReceiver(
        settings,
        loaded.callback_token.get_secret_value(),
        producer,
        metrics,
        dead_letter_topic=loaded.settings.dead_letter.topic,
        tls=loaded.callback_tls,
        event_types=loaded.engine.declared_event_types(),
        storable_body_bytes=limits.callback_body_bytes,
        tracing=tracing,
    )
    return CallbackService(receiver, producer)


def _rules_user(
    service: Service,
) -> Callable[[dict[str, Decoder], Engine, Callable[[], None]], None]:
    """A reload's new rules: to the consumer loop, and their event types to the receiver."""

    def use_rules(decoders: dict[str, Decoder], engine: Engine, retire: Callable[[], None]) -> None:
        service.consumer.use_rules(decoders, engine, retire)
        if service.callbacks is not None:
            service.callbacks.receiver.use_event_types(engine.declared_event_types())

    return use_rules


def _fleet(
    loaded: LoadedBridge,
    limiter: AdaptiveLimiter,
    metrics: BridgeMetrics,
    consumer_settings: KafkaClientConfig,
    producer_settings: KafkaClientConfig,
) -> FleetBudget:
    """The task that sets the limiter's shares (docs/fleet-budget.md)."""
    settings = loaded.settings
    link = None
    if settings.fleet.enabled:
        link = BudgetLink(
            settings.fleet.topic,
            consumer_settings=consumer_settings.settings,
            producer_settings=producer_settings.settings,
            group_id=settings.kafka.group_id,
        )
    budget = settings.vibes.requests_per_second
    fleet = FleetBudget(
        limiter,
        metrics,
        budget=budget,
        key_budgets=company_rates(settings.vibes),
        settings=settings.fleet,
        group=settings.kafka.group_id,
        link=link,
    )
    # Every key starts at the conservative share until the first plan (the whole budget
    # when the fleet is off).
    limiter.set_default_share(fleet.start_share)
    for company_key, share in fleet.start_shares().items():
        limiter.set_default_share(share, company_key)
    return fleet


async def _heartbeat(service: Service) -> None:
    """Keep liveness, readiness and the progress gauge current."""
    next_topic_check = time.monotonic() + _TOPIC_RECHECK_SECONDS
    while True:
        health = service.health
        missing = health.dead_letter_topic_missing or health.receipts_topic_missing
        if missing and time.monotonic() >= next_topic_check:
            # Created meanwhile (by an operator, or by auto-creation on first write)?
            exists = await call_blocking(service.outbox.topic_exists)
            service.health.dead_letter_topic_missing = not exists
            await _check_receipts_topic(service)
            next_topic_check = time.monotonic() + _TOPIC_RECHECK_SECONDS
        service.health.loop_alive()
        service.health.credentials_rejected = service.deliverer.credentials_rejected
        service.dispatcher.review()  # a company paused for delivery.parking.after parks
        for company_key, count in service.dispatcher.parked_pending().items():
            service.metrics.pipeline.parked_pending(company_key, count)
        ready = not service.health.readiness_problems()
        service.metrics.pipeline.ready(ready)
        service.metrics.pipeline.progressed()
        await asyncio.sleep(_HEARTBEAT_SECONDS)
