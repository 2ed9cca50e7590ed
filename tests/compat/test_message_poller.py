"""Polling endpoints through the Svix SDK's ``message_poller``: ``poll`` with the iterator
kept by the client, and ``consumer_poll`` / ``consumer_seek`` with the offset kept by the
server. The endpoint is made with the URL ``poll:`` and gets no deliveries."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import List

from svix.api import (
    ApplicationOut,
    EndpointIn,
    MessageIn,
    MessagePollerConsumerPollOptions,
    MessagePollerPollOptions,
    PollingEndpointConsumerSeekIn,
    Svix,
)

from support import unique, wait_until


def _send(svix: Svix, app: ApplicationOut, event_type: str, n: int) -> str:
    return svix.message.create(app.id, MessageIn(event_type=event_type, payload={"n": n})).id


def _ids(page) -> List[str]:
    return [message.id for message in page.data]


def _visible(svix: Svix, app: ApplicationOut, poller_id: str, count: int) -> None:
    """Waits until the stream shows ``count`` messages: on PostgreSQL a transaction still open
    anywhere on the server holds the stream back until it ends."""
    wait_until(
        lambda: len(svix.message.poller.poll(app.id, poller_id, MessagePollerPollOptions(limit=250)).data)
        >= count,
        what=f"{count} messages in the stream",
    )


def test_poll_with_the_client_kept_iterator(svix: Svix, app: ApplicationOut) -> None:
    poller = svix.endpoint.create(
        app.id, EndpointIn(url="poll:", uid=unique("poller"), event_types=["order.placed"])
    )
    sent = [_send(svix, app, "order.placed", n) for n in range(3)]
    _send(svix, app, "user.created", 9)
    _visible(svix, app, poller.id, len(sent))

    page = svix.message.poller.poll(app.id, poller.id, MessagePollerPollOptions(limit=2))
    assert _ids(page) == sent[:2]
    assert page.done is False
    assert page.data[0].event_type == "order.placed"
    assert page.data[0].payload == {"n": 0}
    page = svix.message.poller.poll(
        app.id, poller.id, MessagePollerPollOptions(limit=2, iterator=page.iterator)
    )
    assert _ids(page) == sent[2:]
    assert page.done is True
    # Nothing new, then the next message from the same iterator.
    iterator = page.iterator
    page = svix.message.poller.poll(app.id, poller.id, MessagePollerPollOptions(iterator=iterator))
    assert _ids(page) == []
    later = _send(svix, app, "order.placed", 3)
    _visible(svix, app, poller.id, len(sent) + 1)
    page = svix.message.poller.poll(app.id, poller.id, MessagePollerPollOptions(iterator=iterator))
    assert _ids(page) == [later]
    # By uid too, and from a time.
    future = datetime.now(timezone.utc) + timedelta(days=1)
    page = svix.message.poller.poll(app.id, poller.uid, MessagePollerPollOptions(after=future))
    assert _ids(page) == []
    # A polling endpoint is read, never sent to.
    assert svix.message_attempt.list_by_endpoint(app.id, poller.id).data == []


def test_consumer_poll_and_seek_with_the_server_kept_offset(svix: Svix, app: ApplicationOut) -> None:
    poller = svix.endpoint.create(app.id, EndpointIn(url="poll:"))
    sent = [_send(svix, app, "order.placed", n) for n in range(3)]
    _visible(svix, app, poller.id, len(sent))
    consumer = unique("consumer")

    page = svix.message.poller.consumer_poll(
        app.id, poller.id, consumer, MessagePollerConsumerPollOptions(limit=2)
    )
    assert _ids(page) == sent[:2]
    # The server moved the offset: the next call goes on.
    page = svix.message.poller.consumer_poll(app.id, poller.id, consumer)
    assert _ids(page) == sent[2:]
    assert page.done is True
    assert _ids(svix.message.poller.consumer_poll(app.id, poller.id, consumer)) == []

    # Seeking back to a time before the messages reads them again.
    before = datetime.now(timezone.utc) - timedelta(minutes=5)
    out = svix.message.poller.consumer_seek(
        app.id, poller.id, consumer, PollingEndpointConsumerSeekIn(after=before)
    )
    assert out.iterator
    page = svix.message.poller.consumer_poll(app.id, poller.id, consumer)
    assert _ids(page) == sent
    # Another consumer has an offset of its own, from the endpoint's creation.
    other = svix.message.poller.consumer_poll(app.id, poller.id, unique("consumer"))
    assert _ids(other) == sent
