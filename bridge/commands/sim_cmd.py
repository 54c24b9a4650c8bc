"""``vibes-bridge sim``: run the Vibes Event API simulator on this machine.

Only argument handling lives here; the simulator itself is ``bridge.sim``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import click

from bridge.sim.callbacks import CallbackKnobs
from bridge.sim.config import (
    DEFAULT_COMPANY_KEY,
    DEFAULT_HOST,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_EVENT_IDS,
    DEFAULT_MAX_EVENTS,
    DEFAULT_PASSWORD,
    DEFAULT_USERNAME,
    SimConfig,
)
from bridge.sim.faults import KNOB_RANGES, FaultSettings, SettingsError
from bridge.sim.server import ListenError, run, uvloop_available


def _knob(name: str) -> click.FloatRange:
    """The option type of a run-time knob, from the range ``/_sim/faults`` also applies.

    A range with a hole (``rate_limit``: 0, or at least 0.001) is checked as a
    whole by :class:`FaultSettings`; the option type shows and checks the outer bounds.
    """
    knob = KNOB_RANGES[name]
    return click.FloatRange(0.0 if knob.zero_is_off else knob.low, knob.high)


def _as_options(error: SettingsError) -> str:
    """The settings' problems with each knob named as its option (``--rate-limit``)."""
    problems = []
    for problem in error.problems:
        name, _, rest = problem.partition(" ")
        option = "--" + name.replace("_", "-") if name in KNOB_RANGES else name
        problems.append(f"{option} {rest}")
    return "; ".join(problems)


def _company_users(values: Sequence[str]) -> dict[str, tuple[str, str]]:
    """``KEY=USER:PASSWORD`` options as key -> (user, password); the value is never echoed."""
    users: dict[str, tuple[str, str]] = {}
    for value in values:
        key, equals, pair = value.partition("=")
        username, colon, password = pair.partition(":")
        if not (equals and colon and key.strip() and username):
            raise click.BadParameter("write KEY=USER:PASSWORD", param_hint="--company-user")
        users[key.strip()] = (username, password)
    return users


def _company_keys(values: Sequence[str]) -> tuple[str, ...]:
    keys = tuple(key.strip() for value in values for key in value.split(",") if key.strip())
    if not keys:
        raise click.BadParameter("give at least one company key", param_hint="--company-key")
    return keys


@click.command(
    "sim",
    epilog=(
        "Every knob from --latency-ms to --drop-rate can also be changed while the "
        "simulator runs: POST a JSON object with the same names in snake_case "
        "(latency_ms, error_rate, ...) to /_sim/faults. Inspect with GET /_sim/events, "
        "/_sim/stats and /_sim/faults; POST /_sim/reset clears events, stats and the "
        "duplicate memory. See docs/simulator.md."
    ),
)
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port to listen on; 0 picks a free one. The address is printed as "
    "'listening on http://HOST:PORT' once the server accepts connections.",
)
@click.option(
    "--company-key",
    "company_keys",
    multiple=True,
    default=(DEFAULT_COMPANY_KEY,),
    show_default=True,
    metavar="KEY[,KEY...]",
    help="Company key(s) the simulator serves; repeat or separate with commas. Other keys get 404.",
)
@click.option(
    "--username",
    envvar="VIBES_USERNAME",
    show_envvar=True,
    default=DEFAULT_USERNAME,
    show_default=True,
    help="Basic-auth username the simulator accepts.",
)
@click.option(
    "--password",
    envvar="VIBES_PASSWORD",
    show_envvar=True,
    default=DEFAULT_PASSWORD,
    show_default=True,
    help="Basic-auth password the simulator accepts.",
)
@click.option(
    "--company-user",
    "company_users",
    multiple=True,
    metavar="KEY=USER:PASSWORD",
    help="A company key with a Basic-auth user of its own (repeatable); it accepts only "
    "that pair, every other key --username/--password.",
)
@click.option(
    "--latency-ms",
    type=_knob("latency_ms"),
    default=0.0,
    show_default=True,
    help="Fixed delay added before every Event API answer, in milliseconds.",
)
@click.option(
    "--latency-jitter-ms",
    type=_knob("latency_jitter_ms"),
    default=0.0,
    show_default=True,
    help="Extra random delay, uniform in [0, JITTER] ms, added to --latency-ms.",
)
@click.option(
    "--rate-limit",
    type=_knob("rate_limit"),
    default=0.0,
    show_default=True,
    help="Requests per second allowed per company key (token bucket); excess requests "
    "get 429 with an integer Retry-After header. 0 means unlimited; otherwise at least 0.001.",
)
@click.option(
    "--rate-limit-burst",
    type=_knob("rate_limit_burst"),
    default=0.0,
    show_default=True,
    help="Token-bucket capacity: requests allowed at once after a quiet spell. "
    "0 means one second's worth (= --rate-limit).",
)
@click.option(
    "--error-rate",
    type=_knob("error_rate"),
    default=0.0,
    show_default=True,
    help="Share of requests (0 to 1) answered 503 Service Unavailable.",
)
@click.option(
    "--error-500-rate",
    type=_knob("error_500_rate"),
    default=0.0,
    show_default=True,
    help="Share of requests (0 to 1) answered 500 Internal Server Error.",
)
@click.option(
    "--timeout-rate",
    type=_knob("timeout_rate"),
    default=0.0,
    show_default=True,
    help="Share of requests (0 to 1) held without an answer for --timeout-hold-s, "
    "then answered 504 (clients with a shorter timeout see a timeout).",
)
@click.option(
    "--timeout-hold-s",
    type=_knob("timeout_hold_s"),
    default=FaultSettings().timeout_hold_s,
    show_default=True,
    help="How long a timeout fault holds the request, in seconds.",
)
@click.option(
    "--drop-rate",
    type=_knob("drop_rate"),
    default=0.0,
    show_default=True,
    help="Share of requests (0 to 1) whose connection is closed without an answer. "
    "The four fault shares together must not exceed 1.",
)
@click.option(
    "--seed",
    type=int,
    default=None,
    help="Seed for the latency and fault draws, to replay the same sequence. [default: random]",
)
@click.option(
    "--max-body-bytes",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_BODY_BYTES,
    show_default=True,
    help="Largest accepted request body; larger bodies get 413.",
)
@click.option(
    "--max-events",
    type=click.IntRange(min=0),
    default=DEFAULT_MAX_EVENTS,
    show_default=True,
    help="Accepted events kept for GET /_sim/events; the oldest are forgotten first.",
)
@click.option(
    "--max-event-ids",
    type=click.IntRange(min=0),
    default=DEFAULT_MAX_EVENT_IDS,
    show_default=True,
    help="event_ids remembered for duplicate detection; a re-use older than this "
    "many ids counts as new.",
)
@click.option(
    "--uvloop/--no-uvloop",
    "use_uvloop",
    default=False,
    show_default=True,
    help="Run on uvloop (optional package; about 8% less CPU per request).",
)
@click.option(
    "--callback-delay-s",
    type=click.FloatRange(0, 3600),
    default=0.0,
    show_default=True,
    help="Delay before the event-processed callbacks of an accepted event are sent.",
)
@click.option(
    "--callback-retry-s",
    type=click.FloatRange(0, 3600),
    default=300.0,
    show_default=True,
    help="Seconds between tries of a callback the receiver did not answer 2xx "
    "(Vibes: 300, up to 5 tries). Also settable through /_sim/callbacks/settings.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default="info",
    show_default=True,
    help="Log level on stderr. Bodies, credentials and person data are never logged.",
)
def sim_command(
    *,
    host: str,
    port: int,
    company_keys: tuple[str, ...],
    username: str,
    password: str,
    company_users: tuple[str, ...],
    latency_ms: float,
    latency_jitter_ms: float,
    rate_limit: float,
    rate_limit_burst: float,
    error_rate: float,
    error_500_rate: float,
    timeout_rate: float,
    timeout_hold_s: float,
    drop_rate: float,
    seed: int | None,
    max_body_bytes: int,
    max_events: int,
    max_event_ids: int,
    use_uvloop: bool,
    callback_delay_s: float,
    callback_retry_s: float,
    log_level: str,
) -> None:
    """Run a local Vibes Event API simulator (loopback by default).

    It serves POST /companies/{company_key}/events with Basic auth, validates
    bodies as Vibes does, answers 200 with the event_id, records re-used
    event_ids as duplicates, and can add latency, rate limiting and faults.
    It stops cleanly on SIGTERM or Ctrl-C.
    """
    try:
        faults = FaultSettings(
            latency_ms=latency_ms,
            latency_jitter_ms=latency_jitter_ms,
            rate_limit=rate_limit,
            rate_limit_burst=rate_limit_burst,
            error_rate=error_rate,
            error_500_rate=error_500_rate,
            timeout_rate=timeout_rate,
            timeout_hold_s=timeout_hold_s,
            drop_rate=drop_rate,
        )
    except SettingsError as exc:
        raise click.UsageError(_as_options(exc)) from None
    config = SimConfig(
        host=host,
        port=port,
        company_keys=_company_keys(company_keys),
        username=username,
        password=password,
        company_users=_company_users(company_users),
        max_body_bytes=max_body_bytes,
        max_events=max_events,
        max_event_ids=max_event_ids,
        seed=seed,
        faults=faults,
        callbacks=CallbackKnobs(delay_s=callback_delay_s, retry_s=callback_retry_s),
    )
    logging.basicConfig(
        level=log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    def announce(url: str) -> None:
        click.echo(f"listening on {url}")
        sys.stdout.flush()

    if use_uvloop and not uvloop_available():
        raise click.UsageError("--uvloop was given but uvloop is not installed")
    try:
        run(config, announce, use_uvloop)
    except ListenError as exc:
        raise click.ClickException(str(exc)) from exc
