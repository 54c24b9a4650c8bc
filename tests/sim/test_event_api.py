"""The Event API as a client sees it: auth, validation, duplicates, bad input."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from bridge.commands.sim_cmd import sim_command
from bridge.vibes.entity import entity_problems
from tests.support.simulator import COUNTERS, SimProcess, assert_envelope, event, events, stats


def test_valid_event_is_sent(sim: SimProcess, client: httpx.Client) -> None:
    response = client.post(
        "/companies/demo/events", json=event("e-1"), headers={"X-API-Version": "2"}
    )
    assert response.status_code == 200
    assert response.json()["event_id"] == "e-1"
    assert [e["outcome"] for e in events(sim)] == ["sent"]
    assert stats(sim)["sent"] == 1


def test_a_request_s_traceparent_is_recorded_with_its_event(
    sim: SimProcess, client: httpx.Client
) -> None:
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    client.post(
        "/companies/demo/events", json=event("e-1"), headers={"traceparent": traceparent}
    ).raise_for_status()
    client.post("/companies/demo/events", json=event("e-2")).raise_for_status()
    traced, untraced = events(sim)
    assert traced["traceparent"] == traceparent
    assert "traceparent" not in untraced


def test_missing_event_id_is_generated(sim: SimProcess, client: httpx.Client) -> None:
    response = sim.post_event(client, event())
    assert response.status_code == 200
    generated = response.json()["event_id"]
    assert isinstance(generated, str)
    assert 0 < len(generated) <= 40
    (recorded,) = events(sim)
    assert recorded["event_id"] == generated
    assert "event_id" not in recorded["body"]  # the body is recorded as it was sent


@pytest.mark.parametrize(
    "auth",
    [None, ("demo", "wrong"), ("someone", "demo")],
    ids=["missing", "wrong-password", "wrong-user"],
)
def test_bad_credentials_get_401(sim: SimProcess, auth: tuple[str, str] | None) -> None:
    with httpx.Client(base_url=sim.url, auth=auth, timeout=10) as anonymous:
        response = sim.post_event(anonymous, event("e-401"))
    assert_envelope(response, 401)
    assert response.headers["www-authenticate"].startswith("Basic")
    assert stats(sim)["unauthorized"] == 1
    assert events(sim) == []


def test_malformed_authorization_header_gets_401(sim: SimProcess) -> None:
    for header in ["Basic", "Basic !!!not-base64", "Bearer abc", "Basic ZGVtbw=="]:
        response = httpx.post(
            f"{sim.url}/companies/demo/events",
            json=event(),
            headers={"Authorization": header},
            timeout=10,
        )
        assert_envelope(response, 401)


def test_unknown_company_key_gets_404(sim: SimProcess, client: httpx.Client) -> None:
    assert_envelope(sim.post_event(client, event("e-404"), company_key="nobody"), 404)
    assert stats(sim)["rejected"] == 1


@pytest.mark.parametrize(
    "body",
    [
        event("e-1", event_type="order shipped!"),
        event("e-1", event_data={"order_id": "o-1"}),
        event("x" * 41),
        event("e-1", event_data=["not", "an", "object"]),
        event("e-1", event_type=None),
        {"event_data": {"mdn": "+12995551234"}},
        event("", debug_data="text"),
        event("e-1", unexpected=1),
        event("e-1", event_data={"external_person_id": ""}),
        event("e-1", event_data={"external_person_id": "p-1", "mdn": ""}),
        event("e-1", event_data={"person_key": None}),
        event("e-1", event_data={"mdn": 12995551234}),
        event("e-1", event_data={"vibes_device_id": ["d-1"], "person_id": "p"}),
    ],
    ids=[
        "bad-event-type",
        "missing-recipient",
        "event-id-over-40",
        "event-data-not-object",
        "event-type-null",
        "event-type-missing",
        "empty-id-and-debug-not-object",
        "unknown-field",
        "empty-recipient",
        "empty-recipient-beside-a-valid-one",
        "null-recipient",
        "number-recipient",
        "list-recipient-beside-a-valid-one",
    ],
)
def test_invalid_bodies_get_400_with_one_error_per_problem(
    sim: SimProcess, client: httpx.Client, body: dict[str, Any]
) -> None:
    errors = assert_envelope(sim.post_event(client, body), 400)
    assert [e["message"] for e in errors] == entity_problems(body)
    assert all(e["code"] == 400 for e in errors)
    assert stats(sim)["rejected"] == 1
    assert events(sim) == []


def test_reused_event_id_is_accepted_but_recorded_duplicate(
    sim: SimProcess, client: httpx.Client
) -> None:
    first = sim.post_event(client, event("dup-1"))
    second = sim.post_event(client, event("dup-1"))
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json()["event_id"] == "dup-1"
    assert [e["outcome"] for e in events(sim)] == ["sent", "duplicate"]
    counts = stats(sim)
    assert (counts["sent"], counts["duplicates"]) == (1, 1)


def test_duplicate_memory_is_per_company(sim: SimProcess, client: httpx.Client) -> None:
    assert sim.post_event(client, event("shared-id")).status_code == 200
    assert sim.post_event(client, event("shared-id"), company_key="other").status_code == 200
    assert [(e["company_key"], e["outcome"]) for e in events(sim)] == [
        ("demo", "sent"),
        ("other", "sent"),
    ]


def test_events_are_listed_in_arrival_order_with_their_shape(
    sim: SimProcess, client: httpx.Client
) -> None:
    bodies = [event(f"order-{i}") for i in range(5)]
    for body in bodies:
        assert sim.post_event(client, body).status_code == 200
    assert sim.post_event(client, bodies[0]).status_code == 200
    listed = events(sim)
    assert [e["body"] for e in listed] == [*bodies, bodies[0]]
    assert [e["outcome"] for e in listed] == ["sent"] * 5 + ["duplicate"]
    stamps = []
    for entry in listed:
        assert {"company_key", "outcome", "body", "received_at"} <= set(entry)
        assert entry["company_key"] == "demo"
        stamp = datetime.fromisoformat(entry["received_at"])
        assert stamp.utcoffset() == UTC.utcoffset(None)
        stamps.append(stamp)
    assert stamps == sorted(stamps)


def test_reset_clears_events_stats_and_duplicate_memory(
    sim: SimProcess, client: httpx.Client
) -> None:
    assert sim.post_event(client, event("again")).status_code == 200
    assert sim.post_event(client, {"bad": True}).status_code == 400
    reset = httpx.post(f"{sim.url}/_sim/reset", timeout=10)
    assert reset.status_code == 200
    assert set(reset.json().values()) == {0}
    assert events(sim) == []
    assert set(stats(sim).values()) == {0}
    assert sim.post_event(client, event("again")).status_code == 200
    assert [e["outcome"] for e in events(sim)] == ["sent"]


def test_stats_add_up(sim: SimProcess, client: httpx.Client) -> None:
    sim.post_event(client, event("a"))
    sim.post_event(client, event("a"))
    sim.post_event(client, event("b", event_type="bad type"))
    httpx.post(f"{sim.url}/companies/demo/events", json=event("c"), timeout=10)
    counts = stats(sim)
    assert all(isinstance(value, int) for value in counts.values())
    assert counts["received"] == 4
    assert counts["received"] == sum(counts[name] for name in COUNTERS)


# --- bad input never crashes the server ---------------------------------------------


def test_non_json_body_gets_400(sim: SimProcess, client: httpx.Client) -> None:
    response = client.post(
        "/companies/demo/events",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert_envelope(response, 400)


@pytest.mark.parametrize("payload", [b"[1, 2]", b'"text"', b"42", b"null"])
def test_json_that_is_not_an_object_gets_400(
    sim: SimProcess, client: httpx.Client, payload: bytes
) -> None:
    response = client.post(
        "/companies/demo/events", content=payload, headers={"Content-Type": "application/json"}
    )
    assert_envelope(response, 400)


def test_invalid_utf8_gets_400(sim: SimProcess, client: httpx.Client) -> None:
    response = client.post(
        "/companies/demo/events",
        content=b'{"event_type": "\xff\xfe"}',
        headers={"Content-Type": "application/json"},
    )
    assert_envelope(response, 400)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_wrong_content_type_gets_415(
    sim: SimProcess, client: httpx.Client, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("/companies/demo/events", content=b"{}", headers=headers)
    assert_envelope(response, 415)


def test_json_content_type_with_charset_is_accepted(sim: SimProcess, client: httpx.Client) -> None:
    response = client.post(
        "/companies/demo/events",
        content=httpx.Request("POST", "/", json=event("cs-1")).content,
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200


def test_huge_body_gets_413_and_server_stays_healthy(sim: SimProcess, client: httpx.Client) -> None:
    huge = b'{"event_type": "' + b"a" * (2 * 1024 * 1024) + b'"}'
    response = client.post(
        "/companies/demo/events", content=huge, headers={"Content-Type": "application/json"}
    )
    assert_envelope(response, 413)

    def chunks() -> Any:
        for _ in range(3):
            yield b"a" * (512 * 1024)

    chunked = client.post(
        "/companies/demo/events", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert_envelope(chunked, 413)
    assert sim.post_event(client, event("after-huge")).status_code == 200


def test_unknown_path_gets_404(sim: SimProcess, client: httpx.Client) -> None:
    for path in ["/", "/companies/demo", "/companies/demo/events/extra", "/_sim/nothing"]:
        assert_envelope(client.get(path), 404)
        assert_envelope(client.post(path, json={}), 404)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/companies/demo/events", "POST"),
        ("PUT", "/companies/demo/events", "POST"),
        ("DELETE", "/_sim/events", "GET"),
        ("POST", "/_sim/stats", "GET"),
        ("GET", "/_sim/reset", "POST"),
        ("DELETE", "/_sim/faults", "GET, POST"),
    ],
)
def test_wrong_method_gets_405(
    sim: SimProcess, client: httpx.Client, method: str, path: str, allowed: str
) -> None:
    response = client.request(method, path)
    assert_envelope(response, 405)
    assert response.headers["allow"] == allowed


def test_garbage_on_the_socket_does_not_kill_the_server(sim: SimProcess) -> None:
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(sim.url)
    assert parts.hostname is not None
    assert parts.port is not None
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as raw:
        raw.sendall(b"\x00\x01 NOT HTTP\r\n\r\n")
        raw.recv(1024)
    assert httpx.get(f"{sim.url}/_sim/health", timeout=10).json() == {"status": "ok"}


def test_a_company_user_of_its_own_is_the_only_one_that_key_accepts(
    start: Callable[..., SimProcess],
) -> None:
    sim = start("--company-key", "demo,other", "--company-user", "other=bob:b-pass")
    with (
        httpx.Client(base_url=sim.url, auth=("demo", "demo"), timeout=10) as common,
        httpx.Client(base_url=sim.url, auth=("bob", "b-pass"), timeout=10) as bob,
    ):
        assert common.post("/companies/demo/events", json=event("d-1")).status_code == 200
        assert_envelope(common.post("/companies/other/events", json=event("o-1")), 401)
        assert bob.post("/companies/other/events", json=event("o-2")).status_code == 200
        assert_envelope(bob.post("/companies/demo/events", json=event("d-2")), 401)
    assert [(e["company_key"], e["event_id"]) for e in events(sim)] == [
        ("demo", "d-1"),
        ("other", "o-2"),
    ]
    assert "b-pass" not in sim.log()


def test_a_malformed_company_user_is_a_usage_error() -> None:
    result = CliRunner().invoke(sim_command, ["--company-user", "other=bob"])
    assert result.exit_code == 2
    assert "KEY=USER:PASSWORD" in result.output
