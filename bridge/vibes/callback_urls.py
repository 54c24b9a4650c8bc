"""The destination URL of a callback registration: what may be registered, and how it is shown.

A registered URL carries the receiver's secret token in its last path segment,
and possibly a ``user:password@`` part; both are hidden whenever a URL is
printed unless the operator asks. The checks run on the text as typed, before
:func:`urllib.parse.urlsplit`, because urlsplit silently drops tabs and line
breaks (CVE-2022-0391's fix), so a URL with them would look valid to it.
Messages never repeat the URL: it holds the token.
"""

from __future__ import annotations

import unicodedata
from typing import Final
from urllib.parse import SplitResult, urlsplit, urlunsplit

SCHEMES: Final = ("https", "http")
HIDDEN_TOKEN: Final = "<token>"
HIDDEN_CREDENTIALS: Final = "<credentials>"
UNREADABLE: Final = "<not a valid URL>"


def check_destination_url(url: str) -> None:
    """Raise ValueError (one line, without the URL) unless ``url`` can receive callbacks."""
    if any(_is_forbidden(character) for character in url):
        raise ValueError("the URL must not contain spaces or control characters")
    parts = _split(url)
    if parts is None:
        raise ValueError("the URL cannot be read as a URL")
    if parts.scheme.lower() not in SCHEMES:
        raise ValueError("the URL must start with https:// (or http://)")
    if not parts.hostname:
        raise ValueError("the URL has no host")
    try:
        parts.port  # noqa: B018 - reading it is the check: urlsplit parses the port lazily
    except ValueError:
        raise ValueError("the URL's port is not a number from 0 to 65535") from None


def shown_url(url: str) -> str:
    """``url`` as printed by default: credentials and token hidden, query and fragment dropped.

    A URL registered by another client may hold anything: one that
    :func:`check_destination_url` would refuse is not shown at all, since where
    its secrets sit cannot be told (urlsplit even drops line breaks from it).
    """
    try:
        check_destination_url(url)
    except ValueError:
        return UNREADABLE
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{HIDDEN_CREDENTIALS}@{netloc.rpartition('@')[2]}"
    head, _, last = parts.path.rstrip("/").rpartition("/")
    path = f"{head}/{HIDDEN_TOKEN}" if last else parts.path
    return printable(urlunsplit((parts.scheme, netloc, path, "", "")))


def printable(text: str) -> str:
    """``text`` with control and other invisible characters escaped, so it cannot drive a
    terminal."""
    return "".join(
        character.encode("unicode_escape").decode("ascii")
        if _is_forbidden(character) and character != " "
        else character
        for character in text
    )


def _is_forbidden(character: str) -> bool:
    # Spaces, C0/C1 controls, DEL, and the invisible format characters (zero-width
    # space, bidi overrides): Unicode categories Z* and C*.
    return unicodedata.category(character)[0] in "ZC"


def _split(url: str) -> SplitResult | None:
    try:
        return urlsplit(url)
    except ValueError:  # "https://[::1/x": an unclosed IPv6 bracket
        return None
