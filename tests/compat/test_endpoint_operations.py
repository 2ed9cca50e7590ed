"""Endpoint operations through the Svix SDK: secret rotation, stats, and recover as a background task."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from standardwebhooks.webhooks import WebhookVerificationError
from svix.api import (
    ApplicationOut,
    BackgroundTaskOut,
    BackgroundTaskStatus,
    BackgroundTaskType,
    EndpointSecretRotateIn,
    MessageIn,
    MessageStatus,
    RecoverIn,
    Svix,
)

from support import Receiver, new_secret, verify_delivery, wait_for_attempt, wait_until


def send_and_receive(svix: Svix, app: ApplicationOut, receiver: Receiver, hook, count: int):
    """Send one message and return the ``count``-th request the endpoint got."""
    svix.message.create(app.id, MessageIn(event_type="rotation.test", payload={"n": count}))
    return receiver.wait_for(hook.url, count)[count - 1]


def test_secret_rotation(svix: Svix, app: ApplicationOut, make_hook, receiver: Receiver) -> None:
    hook = make_hook()
    rotated = svix.endpoint.rotate_secret(app.id, hook.id, EndpointSecretRotateIn())
    assert rotated.key.startswith("whsec_") and rotated.key != hook.secret
    assert svix.endpoint.get_secret(app.id, hook.id).key == rotated.key

    during_grace = send_and_receive(svix, app, receiver, hook, 1)
    assert len(during_grace.headers["webhook-signature"].split(" ")) >= 2, "old and new keys both sign"
    assert verify_delivery(during_grace, rotated.key) == {"n": 1}
    assert verify_delivery(during_grace, hook.secret) == {"n": 1}

    chosen = new_secret()
    svix.endpoint.rotate_secret(app.id, hook.id, EndpointSecretRotateIn(key=chosen, grace_period_seconds=0))
    assert svix.endpoint.get_secret(app.id, hook.id).key == chosen
    after = send_and_receive(svix, app, receiver, hook, 2)
    assert verify_delivery(after, chosen) == {"n": 2}
    with pytest.raises(WebhookVerificationError):
        verify_delivery(after, rotated.key)  # expired at once: grace period 0


def test_endpoint_stats(svix: Svix, app: ApplicationOut, make_hook, receiver: Receiver) -> None:
    hook = make_hook()
    receiver.respond(hook.url, 400)
    failed = svix.message.create(app.id, MessageIn(event_type="stats.test", payload={"n": 1}))
    wait_for_attempt(svix, app.id, failed.id, status=MessageStatus.FAIL)
    receiver.respond(hook.url, 200)
    ok = svix.message.create(app.id, MessageIn(event_type="stats.test", payload={"n": 2}))
    wait_for_attempt(svix, app.id, ok.id, status=MessageStatus.SUCCESS)

    stats = svix.endpoint.get_stats(app.id, hook.id)
    assert (stats.success, stats.fail, stats.pending, stats.sending, stats.canceled) == (1, 1, 0, 0, 0)


def test_recover_resends_failed_deliveries(svix: Svix, app: ApplicationOut, make_hook, receiver: Receiver) -> None:
    hook = make_hook()
    receiver.respond(hook.url, 400)
    msg = svix.message.create(app.id, MessageIn(event_type="recover.test", payload={"n": 1}))
    wait_for_attempt(svix, app.id, msg.id, status=MessageStatus.FAIL)

    receiver.respond(hook.url, 200)
    since = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(hours=1)  # naive, as SDK users pass it
    task = svix.endpoint.recover(app.id, hook.id, RecoverIn(since=since))
    assert task.task == BackgroundTaskType.ENDPOINT_RECOVER
    assert task.status in (BackgroundTaskStatus.RUNNING, BackgroundTaskStatus.FINISHED)

    redelivered = receiver.wait_for(hook.url, 2)[1]
    assert verify_delivery(redelivered, hook.secret) == {"n": 1}
    assert redelivered.headers["webhook-id"] == msg.id
    wait_for_attempt(svix, app.id, msg.id, status=MessageStatus.SUCCESS)

    def finished() -> BackgroundTaskOut | None:
        got = svix.background_task.get(task.id)
        return got if got.status == BackgroundTaskStatus.FINISHED else None

    done = wait_until(finished, what="the recover task to finish")
    assert (done.id, done.task) == (task.id, BackgroundTaskType.ENDPOINT_RECOVER)
