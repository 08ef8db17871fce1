"""Request dependencies: database session, reading store, authenticated tokens."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from leaksense.core.errors import AuthenticationError
from leaksense.server.db import ApiToken
from leaksense.server.runtime import Runtime
from leaksense.server.services.entities import TokenKind, authenticate
from leaksense.server.stores.base import ReadingStore

_bearer = HTTPBearer(auto_error=False)


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    with runtime.sessions() as session:
        yield session


def get_store(runtime: RuntimeDep) -> ReadingStore:
    return runtime.store


SessionDep = Annotated[Session, Depends(get_session)]
StoreDep = Annotated[ReadingStore, Depends(get_store)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _token(session: Session, credentials: Credentials, kinds: tuple[TokenKind, ...]) -> ApiToken:
    if credentials is None:
        raise AuthenticationError("missing bearer token (Authorization: Bearer <token>)")
    return authenticate(session, credentials.credentials, kinds)


def gateway_token(session: SessionDep, credentials: Credentials) -> ApiToken:
    return _token(session, credentials, ("gateway",))


def reader_token(session: SessionDep, credentials: Credentials) -> ApiToken:
    return _token(session, credentials, ("reader",))


GatewayToken = Annotated[ApiToken, Depends(gateway_token)]
ReaderToken = Annotated[ApiToken, Depends(reader_token)]
