"""HTTP Basic authentication as the Event API asks for it.

The exact expected header value is precomputed so the common case costs one
constant-time comparison; any other spelling (a lower-case scheme, extra
spaces) is decoded and compared field by field, also in constant time, so the
simulator is no easier to probe than a real service.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from bridge.vibes.api import basic_auth_header


class BasicAuth:
    """Checks an ``Authorization`` header against one username and password."""

    __slots__ = ("_expected_header", "_password", "_username")

    def __init__(self, username: str, password: str) -> None:
        self._username = username.encode()
        self._password = password.encode()
        self._expected_header = basic_auth_header(username, password).encode()

    def allows(self, header: str | None) -> bool:
        """True when the header carries the configured credentials."""
        if header is None:
            return False
        raw = header.encode("utf-8", "surrogateescape")
        if hmac.compare_digest(raw, self._expected_header):
            return True
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        username, sep, password = decoded.partition(b":")
        if not sep:
            return False
        same_user = hmac.compare_digest(username, self._username)
        same_password = hmac.compare_digest(password, self._password)
        return same_user and same_password
