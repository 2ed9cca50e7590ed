"""Error answers as the Svix SDK sees them: the right status and the exception type it raises.

The SDK raises ``svix.exceptions.HttpError`` (``code``, ``detail``, ``status_code``) for
every non-2xx but 422, and ``HTTPValidationError`` for 422, whose ``detail`` it parses
as a list of ``{loc, msg, type}``; a 422 in any other shape crashes the SDK's parser.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import pytest
from svix.api import (
    ApplicationIn,
    ApplicationListOptions,
    ApplicationOut,
    EndpointIn,
    MessageIn,
    Svix,
)
from svix.exceptions import HttpError, HTTPValidationError

from support import Receiver, api_error, unique


class Ctx(NamedTuple):
    svix: Svix
    app: ApplicationOut
    receiver: Receiver


def missing() -> str:
    return unique("missing")


def create_twice(call: Callable[[], object]) -> None:
    call()
    call()


def duplicate_app_uid(c: Ctx) -> None:
    uid = unique("dup")
    create_twice(lambda: c.svix.application.create(ApplicationIn(name="dup", uid=uid)))


def duplicate_endpoint_uid(c: Ctx) -> None:
    uid = unique("dup")
    create_twice(lambda: c.svix.endpoint.create(c.app.id, EndpointIn(url=c.receiver.new_url(), uid=uid)))


def duplicate_event_id(c: Ctx) -> None:
    body = MessageIn(event_type="dup.event", payload={}, event_id=unique("evt"))
    create_twice(lambda: c.svix.message.create(c.app.id, body))


CASES = [
    # 404: unknown objects, by id and by uid
    pytest.param(404, lambda c: c.svix.application.get("app_2mL3zVbQgFZQ1fUqGzXbSxtTq4P"), id="404-app-by-id"),
    pytest.param(404, lambda c: c.svix.application.get(missing()), id="404-app-by-uid"),
    pytest.param(404, lambda c: c.svix.application.delete(missing()), id="404-app-delete"),
    pytest.param(404, lambda c: c.svix.endpoint.list(missing()), id="404-endpoints-of-unknown-app"),
    pytest.param(404, lambda c: c.svix.endpoint.get(c.app.id, missing()), id="404-endpoint"),
    pytest.param(404, lambda c: c.svix.endpoint.get_secret(c.app.id, missing()), id="404-endpoint-secret"),
    pytest.param(404, lambda c: c.svix.event_type.get(missing()), id="404-event-type"),
    pytest.param(
        404, lambda c: c.svix.message.create(missing(), MessageIn(event_type="x", payload={})), id="404-msg-unknown-app"
    ),
    pytest.param(404, lambda c: c.svix.message.get(c.app.id, missing()), id="404-message"),
    pytest.param(
        404, lambda c: c.svix.message_attempt.list_by_msg(c.app.id, missing()), id="404-attempts-of-unknown-msg"
    ),
    # 422: validation, in the list shape the SDK parses
    pytest.param(422, lambda c: c.svix.application.create(ApplicationIn(name="x", uid="bad uid!")), id="422-bad-uid"),
    pytest.param(422, lambda c: c.svix.application.create(ApplicationIn(name="x", uid="x" * 257)), id="422-long-uid"),
    pytest.param(
        422,
        lambda c: c.svix.application.create(ApplicationIn(name="x", uid="app_looks_like_an_id")),
        id="422-uid-like-id",
    ),
    pytest.param(422, lambda c: c.svix.application.list(ApplicationListOptions(limit=251)), id="422-limit-over-250"),
    pytest.param(
        422, lambda c: c.svix.endpoint.create(c.app.id, EndpointIn(url="not a url")), id="422-endpoint-bad-url"
    ),
    pytest.param(
        422, lambda c: c.svix.endpoint.create(c.app.id, EndpointIn(url="ftp://127.0.0.1/x")), id="422-endpoint-ftp-url"
    ),
    # 409: conflicts
    pytest.param(409, duplicate_app_uid, id="409-duplicate-app-uid"),
    pytest.param(409, duplicate_endpoint_uid, id="409-duplicate-endpoint-uid"),
    pytest.param(409, duplicate_event_id, id="409-duplicate-event-id"),
]


@pytest.mark.parametrize("status, call", CASES)
def test_error_status_and_sdk_exception(status: int, call, svix: Svix, app: ApplicationOut, receiver: Receiver) -> None:
    err = api_error(status, lambda: call(Ctx(svix, app, receiver)))
    if isinstance(err, HTTPValidationError):
        assert err.detail, "a 422 names at least one problem"
        assert all(isinstance(item.loc, list) and item.msg for item in err.detail), err.detail
    else:
        assert isinstance(err, HttpError) and err.code and err.detail, err
