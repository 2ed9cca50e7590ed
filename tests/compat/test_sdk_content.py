"""Content erasure and the precheck through the Svix SDK: message and attempt content
expunge, bulk expunge, expunge of every content of an application, and attempt lists that
embed the message, filter by tag and hide response bodies unless asked."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from svix.api import (
    ApplicationOut,
    BulkExpungeContentsIn,
    EndpointPatch,
    MessageAttemptListByEndpointOptions,
    MessageAttemptListByMsgOptions,
    MessageGetOptions,
    MessageIn,
    MessagePrecheckIn,
    MessageStatus,
    Svix,
)

from support import Receiver, WebhookdProcess, api_error, wait_for_attempt

SECRET_PAYLOAD = {"card": "4242-secret-4242"}


def _stored_payloads(webhookd: WebhookdProcess, ids: list) -> list:
    """The payload bytes the database holds for these messages (SQLite or PostgreSQL)."""
    url = webhookd.database_url
    if url.startswith("sqlite://"):
        with sqlite3.connect(url.removeprefix("sqlite://")) as db:
            marks = ", ".join("?" for _ in ids)
            rows = db.execute(f"SELECT payload FROM messages WHERE id IN ({marks})", ids).fetchall()
    else:
        import psycopg

        with psycopg.connect(url) as db:
            rows = db.execute("SELECT payload FROM messages WHERE id = ANY(%s)", (ids,)).fetchall()
    return [bytes(row[0]) for row in rows]


def _get(svix: Svix, app_id: str, msg_id: str):
    return svix.message.get(app_id, msg_id, MessageGetOptions(with_content=True))


def test_expunged_payloads_read_back_empty_and_are_gone_from_the_database(
    svix: Svix, app: ApplicationOut, webhookd: WebhookdProcess
) -> None:
    one = svix.message.create(app.id, MessageIn(event_type="card.saved", payload=SECRET_PAYLOAD))
    two = svix.message.create(app.id, MessageIn(event_type="card.saved", payload=SECRET_PAYLOAD, event_id="e-2"))
    three = svix.message.create(app.id, MessageIn(event_type="card.saved", payload=SECRET_PAYLOAD))
    kept = svix.message.create(app.id, MessageIn(event_type="card.saved", payload={"keep": True}))

    svix.message.expunge_content(app.id, one.id)
    assert _get(svix, app.id, one.id).payload == {}
    svix.message.expunge_content(app.id, one.id)  # again: still fine

    out = svix.message.bulk_expunge_content(app.id, BulkExpungeContentsIn(ids=["e-2", "msg_nope", three.id]))
    assert {key: status.value for key, status in out.results.items()} == {
        "e-2": "expunged",
        "msg_nope": "not-found",
        three.id: "expunged",
    }
    for msg in (two, three):
        assert _get(svix, app.id, msg.id).payload == {}
    assert _get(svix, app.id, kept.id).payload == {"keep": True}
    assert all(b"4242" not in stored for stored in _stored_payloads(webhookd, [one.id, two.id, three.id]))

    task = svix.message.expunge_all_contents(app.id)
    assert task.task.value == "application.purge_content"
    finished = svix.background_task.get(task.id)
    assert finished.status.value == "finished"
    assert finished.data == {"messagesPurged": 1}
    assert _get(svix, app.id, kept.id).payload == {}
    assert _stored_payloads(webhookd, [kept.id]) == [b""]
    api_error(404, lambda: svix.message.expunge_content(app.id, "msg_2yZwUhtZW9Qj6Px3ZzwkHtXXi1E"))


def test_attempt_content_expunge_and_list_options(
    svix: Svix, app: ApplicationOut, make_hook, receiver: Receiver
) -> None:
    hook = make_hook()
    receiver.respond(hook.url, 200, b"account 12345")
    tagged = svix.message.create(app.id, MessageIn(event_type="a.b", payload={"n": 1}, tags=["blue"]))
    other = svix.message.create(app.id, MessageIn(event_type="a.b", payload={"n": 2}))
    attempt = wait_for_attempt(svix, app.id, tagged.id, status=MessageStatus.SUCCESS)
    wait_for_attempt(svix, app.id, other.id, status=MessageStatus.SUCCESS)
    assert attempt.response == "account 12345"

    # The SDK's default is with_content=false: bodies read `{}`, as Svix's do.
    (hidden,) = svix.message_attempt.list_by_msg(app.id, tagged.id).data
    assert hidden.response == "{}" and hidden.msg is None
    blue = MessageAttemptListByEndpointOptions(tag="blue", with_msg=True, with_content=True)
    (listed,) = svix.message_attempt.list_by_endpoint(app.id, hook.id, blue).data
    assert (listed.id, listed.response) == (attempt.id, "account 12345")
    assert (listed.msg.id, listed.msg.payload, listed.msg.tags) == (tagged.id, {"n": 1}, ["blue"])
    assert svix.message_attempt.list_by_endpoint(app.id, hook.id, MessageAttemptListByEndpointOptions(tag="red")).data == []
    by_msg = MessageAttemptListByMsgOptions(tag="blue")
    assert svix.message_attempt.list_by_msg(app.id, other.id, by_msg).data == []

    svix.message_attempt.expunge_content(app.id, tagged.id, attempt.id)
    assert svix.message_attempt.get(app.id, tagged.id, attempt.id).response == ""
    api_error(404, lambda: svix.message_attempt.expunge_content(app.id, tagged.id, "atmpt_2yZwUhtZW9Qj6Px3ZzwkHtXXi1E"))


def test_precheck_tells_whether_an_endpoint_would_receive(svix: Svix, app: ApplicationOut, make_hook) -> None:
    assert svix.message.precheck(app.id, MessagePrecheckIn(event_type="a.b")).active is False
    hook = make_hook(event_types=["a.b"], channels=["eu"])
    assert svix.message.precheck(app.id, MessagePrecheckIn(event_type="a.b", channels=["eu"])).active is True
    assert svix.message.precheck(app.id, MessagePrecheckIn(event_type="a.b")).active is False
    assert svix.message.precheck(app.id, MessagePrecheckIn(event_type="c.d", channels=["eu"])).active is False
    svix.endpoint.patch(app.id, hook.id, EndpointPatch(disabled=True))
    assert svix.message.precheck(app.id, MessagePrecheckIn(event_type="a.b", channels=["eu"])).active is False
