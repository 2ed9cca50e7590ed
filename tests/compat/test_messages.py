"""Messages through the Svix SDK, and what the receiver gets.

Every delivery is checked with the Standard Webhooks reference verifier,
with the secret read back through ``endpoint.get_secret``.
"""

from __future__ import annotations

from typing import Any, Dict, List

import pytest
from svix.api import (
    ApplicationIn,
    ApplicationOut,
    EventTypeUpsertIn,
    MessageCreateOptions,
    MessageGetOptions,
    MessageIn,
    MessageListOptions,
    MessageOut,
    Svix,
)
from svix.api.message import message_in_raw

from support import Receiver, RecordedRequest, collect_pages, unique, verify_delivery

PAYLOAD: Dict[str, Any] = {
    "email": "test@example.com",
    "username": "test_user",
    "count": 3,
    "nested": {"list": [1, 2.5, None, True], "text": "caf\u00e9 \u2615"},
}


def send(svix: Svix, app: ApplicationOut, event_type: str = "user.signup", **fields: Any) -> MessageOut:
    fields.setdefault("payload", PAYLOAD)
    return svix.message.create(app.id, MessageIn(event_type=event_type, **fields))


def single_delivery(receiver: Receiver, hook) -> RecordedRequest:
    """Wait for the first delivery to ``hook`` and return it."""
    return receiver.wait_for(hook.url)[0]


def test_message_delivery_is_signed_and_exact(svix: Svix, app: ApplicationOut, make_hook, receiver: Receiver) -> None:
    hook = make_hook(headers={"X-Compat-Test": "abc"})
    event_id = unique("evt")
    msg = send(svix, app, event_id=event_id, channels=["project_1"], tags=["compat"])
    assert msg.id.startswith("msg_")
    assert (msg.event_type, msg.event_id, msg.channels, msg.tags) == (
        "user.signup",
        event_id,
        ["project_1"],
        ["compat"],
    )

    delivery = single_delivery(receiver, hook)
    secret = svix.endpoint.get_secret(app.id, hook.id).key
    assert secret == hook.secret
    assert verify_delivery(delivery, secret) == PAYLOAD
    assert delivery.json() == PAYLOAD
    assert delivery.headers["webhook-id"] == msg.id
    assert delivery.headers["content-type"].startswith("application/json")
    assert delivery.headers["user-agent"].startswith("webhookd/")
    assert delivery.headers["x-compat-test"] == "abc"
    assert delivery.headers["webhook-signature"].startswith("v1,")


def test_create_with_content_returns_payload(svix: Svix, app: ApplicationOut) -> None:
    default = send(svix, app)
    assert default.payload == {}, "the SDK sends with_content=false on create: the payload reads as {}"
    full = svix.message.create(
        app.id, MessageIn(event_type="user.signup", payload=PAYLOAD), MessageCreateOptions(with_content=True)
    )
    assert full.payload == PAYLOAD


def test_message_get_and_list(svix: Svix, app: ApplicationOut) -> None:
    first = send(svix, app, event_id=unique("evt"), channels=["red"], tags=["t1"])
    second = send(svix, app, event_type="user.deleted", payload={"n": 2}, channels=["blue"])

    with_content = MessageGetOptions(with_content=True)
    got = svix.message.get(app.id, first.id, with_content)
    assert (got.id, got.event_type, got.event_id, got.payload) == (first.id, "user.signup", first.event_id, PAYLOAD)
    assert svix.message.get(app.id, first.event_id, with_content).id == first.id, "get by eventId"
    assert svix.message.get(app.uid, first.id).payload == {}, "with_content=false reads as {}"

    listed = collect_pages(
        lambda it: svix.message.list(app.id, MessageListOptions(limit=1, iterator=it, with_content=True)), 1
    )
    assert {m.id for m in listed} == {first.id, second.id}
    assert {m.id: m.payload for m in listed} == {first.id: PAYLOAD, second.id: {"n": 2}}

    def ids(**filters: Any) -> List[str]:
        return [m.id for m in svix.message.list(app.id, MessageListOptions(**filters)).data]

    assert ids(channel="blue") == [second.id]
    assert ids(event_types=["user.signup"]) == [first.id]
    assert ids(tag="t1") == [first.id]


def test_message_with_application_creates_the_app(svix: Svix) -> None:
    uid = unique("implicit")
    body = MessageIn(event_type="user.signup", payload={"a": 1}, application=ApplicationIn(name="Implicit", uid=uid))
    msg = svix.message.create(uid, body)
    app = svix.application.get(uid)
    assert (app.uid, app.name) == (uid, "Implicit")
    assert svix.message.get(uid, msg.id).id == msg.id
    svix.application.delete(app.id)


def test_raw_payload_is_delivered_byte_for_byte(svix: Svix, app: ApplicationOut, make_hook, receiver: Receiver) -> None:
    hook = make_hook()
    raw = '{"z": 1,   "a" : [3, 2,1],\n "s": "caf\u00e9 \\u2615 \u2615"}  '
    msg = svix.message.create(app.id, message_in_raw("raw.event", raw))

    delivery = single_delivery(receiver, hook)
    assert delivery.body == raw.encode("utf-8")
    verify_delivery(delivery, hook.secret, json_parse=False)
    assert delivery.headers["webhook-id"] == msg.id


@pytest.mark.parametrize(
    "filter_fields, matching, other",
    [
        pytest.param(
            {"event_types": ["invoice.paid"]},
            {"event_type": "invoice.paid"},
            {"event_type": "invoice.voided"},
            id="event_types",
        ),
        pytest.param(
            {"channels": ["eu", "us"]},
            {"channels": ["us"]},
            {"channels": ["apac"]},
            id="channels",
        ),
    ],
)
def test_endpoint_filters(
    svix: Svix, app: ApplicationOut, make_hook, receiver: Receiver, filter_fields, matching, other
) -> None:
    """A filtered endpoint gets only matching messages; an unfiltered one gets both."""
    for name in ("invoice.paid", "invoice.voided"):  # Svix wants filter types registered
        svix.event_type.upsert(name, EventTypeUpsertIn(description=name))
    filtered, control = make_hook(**filter_fields), make_hook()
    miss = send(svix, app, **other)
    hit = send(svix, app, **matching)

    receiver.wait_for(control.url, 2)
    assert [r.headers["webhook-id"] for r in receiver.wait_for(filtered.url)] == [hit.id]
    destinations = svix.message_attempt.list_attempted_destinations(app.id, miss.id).data
    assert [d.id for d in destinations] == [control.id], "the non-matching message fanned out to the filter"
