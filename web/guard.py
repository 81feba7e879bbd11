"""Who may ask: the Host names the server answers to, and the optional API token.

The Host check defeats DNS rebinding: a page on evil.example can make the
user's browser resolve evil.example to 127.0.0.1 and then read the answers
from qa like a same-origin page, but its requests still carry
``Host: evil.example``. So only the names the server is really reached by are
accepted (loopback names unless the operator adds others).
"""

from __future__ import annotations

import hmac

from flask import current_app, jsonify, request
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized

#: Names a server on this machine is reached by; always accepted.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
#: An allowed-hosts entry that accepts any Host header (the operator's explicit choice).
ANY_HOST = "*"


def host_name(header: str | None) -> str | None:
    """Return the lower-cased name of a ``Host`` header without its port; None when malformed."""
    if not header:
        return None
    header = header.strip().lower()
    if header.startswith("["):  # [::1]:8000
        name, bracket, rest = header[1:].partition("]")
        if not bracket or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        return name
    name, colon, port = header.partition(":")
    if colon and not port.isdigit():
        return None
    return name or None


def host_allowed(header: str | None, allowed: tuple[str, ...]) -> bool:
    """Return whether ``header`` names a host in ``allowed`` (``.example.com`` also takes subdomains)."""
    name = host_name(header)
    if name is None:
        return False
    for entry in (*LOOPBACK_HOSTS, *allowed):
        entry = entry.strip().lower().strip("[]")
        if entry == ANY_HOST or name == entry or (entry.startswith(".") and name.endswith(entry)):
            return True
    return False


def token_matches(token: str) -> bool:
    """Return whether the request carries ``token``: ``Authorization: Bearer`` or Basic with it as password."""
    auth = request.authorization
    if auth is None:
        return False
    given = auth.token if auth.type == "bearer" else auth.password if auth.type == "basic" else None
    # Constant time: a comparison that stops at the first wrong byte tells an attacker how many were right.
    return given is not None and hmac.compare_digest(given.encode("utf-8", "replace"), token.encode("utf-8"))


def guard():
    """Refuse a request for a Host this server does not serve, or without the token when one is set."""
    config = current_app.config
    if not host_allowed(request.headers.get("Host"), tuple(config["QA_ALLOWED_HOSTS"])):
        name = (request.headers.get("Host") or "")[:100]
        return jsonify(error=f"this server does not answer for host {name!r}; see qa serve --allowed-host"), 400
    token = config["QA_TOKEN"]
    if token and not token_matches(token):
        # Basic lets a browser ask for it (no JavaScript needed); Bearer is for API clients.
        raise Unauthorized(
            "this server needs its access token: Authorization: Bearer TOKEN, or the token as the password",
            www_authenticate=[
                WWWAuthenticate("basic", {"realm": "qa", "charset": "UTF-8"}),
                WWWAuthenticate("bearer", {"realm": "qa"}),
            ],
        )
    return None
