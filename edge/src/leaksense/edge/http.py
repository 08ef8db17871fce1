"""The gateway's HTTP client to the server: :mod:`leaksense.core.http` with its token."""

from __future__ import annotations

from pathlib import Path

from leaksense.core.http import HttpClient, Response, TransportError

__all__ = ["HttpClient", "Response", "TransportError", "gateway_client"]
USER_AGENT = "leaksense-gateway"


def gateway_client(
    base_url: str, token: str, timeout_s: float, *, ca_file: Path | None = None
) -> HttpClient:
    """One kept connection to the server, with the gateway's bearer token."""
    headers = {"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT}
    return HttpClient(base_url, timeout_s, headers=headers, ca_file=ca_file)
