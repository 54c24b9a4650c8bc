"""``vibes-bridge callbacks register|list|delete``: the event-processed registrations.

The registration rule Vibes documents (one per callback type per company with
overlapping active dates) is checked against the current list before creating,
so that a conflict is explained with the registration it collides with rather
than as a bare 4xx; Vibes' own refusal is shown too when it still comes.
Registered URLs hold the receiver's secret token (and may hold a
``user:password@`` part), so they are shown with both hidden unless
``--show-urls`` asks; a URL to register is checked first
(``bridge.vibes.callback_urls``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from bridge.commands.common import EXIT_FAILURES, config_option, load_or_exit
from bridge.delivery.callback_api import CallbackApi, CallbackApiError
from bridge.vibes.api import basic_auth_header
from bridge.vibes.callback_urls import check_destination_url, printable, shown_url
from bridge.vibes.callbacks import (
    conflicts,
    filtered_event_type,
    registration_body,
    registration_type,
)

T = TypeVar("T")


@click.group("callbacks", short_help="Register, list and delete Vibes event-processed callbacks.")
def callbacks_command() -> None:
    """Manage the Vibes Callback API registrations that send event-processed callbacks
    to the bridge's receiver (the callbacks: section). Uses vibes.base_url,
    vibes.company_key and the Vibes credentials of the configuration file.
    Exit 0 on success, 1 when Vibes refused or a registration conflicts, 2 on a bad
    configuration."""


@callbacks_command.command("register")
@config_option
@click.option("--url", required=True, help="The receiver's public URL, token path included.")
@click.option("--event-type", default=None, help="Only this event type (default: every type).")
@click.option("--start-date", default=None, help="ISO 8601, e.g. 2026-01-01T00:00Z (default: now).")
@click.option("--end-date", default=None, help="ISO 8601 (default: open-ended).")
def register_command(
    config_path: Path,
    url: str,
    event_type: str | None,
    start_date: str | None,
    end_date: str | None,
) -> None:
    """Create the event_processed registration pointing at URL."""
    try:
        check_destination_url(url)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--url") from None
    try:
        wanted = registration_body(
            url, event_type=event_type, start_date=start_date, end_date=end_date
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    with _api(config_path) as api:
        clashing = conflicts(wanted, _listed(api), now=datetime.now(UTC))
        if clashing:
            scope = f"event type {event_type}" if event_type else "every event type"
            click.echo(
                f"a registration for event_processed callbacks of {scope} already exists "
                "with overlapping dates (Vibes allows one per callback type per company); "
                "delete it first (vibes-bridge callbacks delete ID) or give dates that "
                "do not overlap:",
                err=True,
            )
            for entity in clashing:
                click.echo("  " + _describe(entity, show_urls=False), err=True)
            raise SystemExit(EXIT_FAILURES)
        created = _or_exit(lambda: api.create(wanted))
        click.echo(f"registered {created.get('callback_id')}")


@callbacks_command.command("list")
@config_option
@click.option("--show-urls", is_flag=True, help="Show registered URLs with their token.")
def list_command(config_path: Path, show_urls: bool) -> None:
    """List the active and future registrations."""
    with _api(config_path) as api:
        entities = _listed(api)
    if not entities:
        click.echo("no callback registrations")
    for entity in entities:
        click.echo(_describe(entity, show_urls=show_urls))


@callbacks_command.command("delete")
@config_option
@click.argument("callback_id")
def delete_command(config_path: Path, callback_id: str) -> None:
    """End the registration CALLBACK_ID (Vibes sets its end date to now)."""
    with _api(config_path) as api:
        _or_exit(lambda: api.delete(callback_id))
    click.echo(f"deleted {callback_id}")


@contextmanager
def _api(config_path: Path) -> Iterator[CallbackApi]:
    with load_or_exit(config_path) as loaded:
        vibes = loaded.settings.vibes
        credentials = loaded.credentials
        api = CallbackApi.connect(
            base_url=vibes.base_url,
            company_key=vibes.company_key,
            authorization=basic_auth_header(
                credentials.username.get_secret_value(), credentials.password.get_secret_value()
            ),
            api_version=vibes.api_version,
            timeout_seconds=vibes.timeout_seconds,
            tls=loaded.vibes_tls,
        )
        try:
            yield api
        finally:
            api.close()


def _listed(api: CallbackApi) -> list[dict[str, Any]]:
    return _or_exit(api.list)


def _or_exit(call: Callable[[], T]) -> T:
    try:
        result = call()
    except CallbackApiError as exc:
        click.echo(f"vibes-bridge callbacks: {exc}", err=True)
        raise SystemExit(EXIT_FAILURES) from None
    return result


def _describe(entity: Mapping[str, Any], *, show_urls: bool) -> str:
    destination = entity.get("destination")
    url = destination.get("url") if isinstance(destination, Mapping) else None
    shown = "-"
    if isinstance(url, str):
        shown = printable(url) if show_urls else shown_url(url)
    parts = [
        str(entity.get("callback_id", "?")),
        registration_type(entity) or "?",
        f"event_type={filtered_event_type(entity) or '*'}",
        f"start={entity.get('start_date') or '-'}",
        f"end={entity.get('end_date') or '-'}",
        f"url={shown}",
    ]
    return printable("  ".join(parts))  # Vibes answers with text from anyone who registered
