"""The one error hierarchy of Leaksense.

Adapters translate library errors into these (``raise StoreUnavailable(...) from exc``)
so that the domain and the edges (HTTP, CLI) handle failure modes in one place::

    LeaksenseError
    ├── InvalidInput          bad data at a boundary: MQTT payload, HTTP body, file
    │   ├── InvalidMessage    a sensor message that fails the wire schema
    │   └── ConfigError       a configuration file or setting that cannot be used
    ├── AuthenticationError   unknown or missing credentials
    ├── NotFoundError         a named entity (DMA, sensor, gateway) does not exist
    ├── Conflict              the change does not fit the current state (e.g. an alert
    │                         already resolved, or acknowledged by someone else first)
    └── ServiceUnavailable    a dependency is down or busy; retry later (``retry_after_s``)
        ├── StoreUnavailable  the reading or entity store cannot be reached
        ├── UplinkUnavailable the server cannot be reached from a gateway
        └── RateLimited       a client sent more than its share (HTTP 429)
"""

from __future__ import annotations


class LeaksenseError(Exception):
    """Root of every error Leaksense raises on purpose."""


class InvalidInput(LeaksenseError):
    """Input that fails validation; the message says what and where."""


class InvalidMessage(InvalidInput):
    """A sensor message (MQTT topic + payload) that cannot be turned into a reading."""


class ConfigError(InvalidInput):
    """A configuration file or setting that cannot be used."""


class AuthenticationError(LeaksenseError):
    """Missing, unknown or revoked credentials."""


class NotFoundError(LeaksenseError):
    """A named entity does not exist."""


class Conflict(LeaksenseError):
    """A change that the entity's current state forbids (HTTP 409); re-read and decide."""


class ServiceUnavailable(LeaksenseError):
    """A dependency is down; the caller should retry after ``retry_after_s``."""

    def __init__(self, message: str, retry_after_s: float = 5.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class StoreUnavailable(ServiceUnavailable):
    """The reading store or the entity database cannot be reached."""


class UplinkUnavailable(ServiceUnavailable):
    """The central server cannot be reached (or refused the batch temporarily)."""


class RateLimited(ServiceUnavailable):
    """A client exceeded its request or reading rate; nothing was stored, retry later.

    A subclass of :class:`ServiceUnavailable` because the answer is the same (wait
    ``retry_after_s``, send again), but it is the client's doing, not a dependency's.
    """
