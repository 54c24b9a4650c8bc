"""JSON answers, including the Vibes error envelope every non-2xx answer carries.

The envelope's shape is a wire fact shared with the delivery client, so it is
built by :func:`bridge.vibes.api.error_envelope`; this module only wraps it in
an aiohttp response.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from aiohttp import web

from bridge.vibes.api import JSON_CONTENT_TYPE, error_envelope


def json_response(
    payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """``payload`` serialised with orjson, the cheapest encoder at hand."""
    return web.Response(
        body=orjson.dumps(payload), status=status, content_type=JSON_CONTENT_TYPE, headers=headers
    )


def errors_response(
    status: int, messages: Iterable[str], headers: Mapping[str, str] | None = None
) -> web.Response:
    """The error envelope, one entry per message, with ``status`` as each entry's code."""
    return json_response(error_envelope(status, list(messages)), status, headers)
