"""JSON answers, including the errors envelope every Vibes 4xx carries.

``code`` in the envelope is the HTTP status: Vibes publishes no table of its
own codes, and the status is what a client can act on anyway.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import orjson
from aiohttp import web

JSON: Final = "application/json"


def json_response(
    payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """``payload`` serialised with orjson, the cheapest encoder at hand."""
    return web.Response(
        body=orjson.dumps(payload), status=status, content_type=JSON, headers=headers
    )


def errors_response(
    status: int, messages: Iterable[str], headers: Mapping[str, str] | None = None
) -> web.Response:
    """``{"errors": [{"message": ..., "code": status}, ...]}``, one entry per message."""
    errors = [{"message": message, "code": status} for message in messages]
    return json_response({"errors": errors}, status, headers)
