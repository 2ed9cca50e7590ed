"""Delivery attempts through the Svix SDK: by message, by endpoint, single, and per-endpoint status views."""

from __future__ import annotations

from svix.api import (
    ApplicationOut,
    MessageAttemptListByEndpointOptions,
    MessageAttemptListByMsgOptions,
    MessageAttemptTriggerType,
    MessageIn,
    MessageStatus,
    MessageStatusText,
    Svix,
)

from support import Receiver, wait_for_attempt


def test_attempts_of_a_successful_delivery(svix: Svix, app: ApplicationOut, make_hook, receiver: Receiver) -> None:
    hook = make_hook()
    receiver.respond(hook.url, 200, b"thanks")
    msg = svix.message.create(app.id, MessageIn(event_type="order.placed", payload={"order": 7}))
    receiver.wait_for(hook.url)

    attempt = wait_for_attempt(svix, app.id, msg.id, status=MessageStatus.SUCCESS)
    assert [a.id for a in svix.message_attempt.list_by_msg(app.id, msg.id).data] == [attempt.id]
    assert attempt.id.startswith("atmpt_")
    assert (attempt.msg_id, attempt.endpoint_id, attempt.url) == (msg.id, hook.id, hook.url)
    assert attempt.status == MessageStatus.SUCCESS == 0
    assert attempt.status_text == MessageStatusText.SUCCESS
    assert attempt.response_status_code == 200
    assert attempt.response == "thanks"
    assert attempt.response_duration_ms >= 0
    assert attempt.trigger_type == MessageAttemptTriggerType.SCHEDULED

    by_endpoint = svix.message_attempt.list_by_endpoint(app.id, hook.id).data
    assert [a.id for a in by_endpoint] == [attempt.id]
    assert svix.message_attempt.get(app.id, msg.id, attempt.id).id == attempt.id

    filtered = MessageAttemptListByMsgOptions(status=MessageStatus.SUCCESS, endpoint_id=hook.id)
    assert [a.id for a in svix.message_attempt.list_by_msg(app.id, msg.id, filtered).data] == [attempt.id]
    failed_only = MessageAttemptListByEndpointOptions(status=MessageStatus.FAIL)
    assert svix.message_attempt.list_by_endpoint(app.id, hook.id, failed_only).data == []

    (destination,) = svix.message_attempt.list_attempted_destinations(app.id, msg.id).data
    assert (destination.id, destination.url, destination.status) == (hook.id, hook.url, MessageStatus.SUCCESS)
    (attempted,) = svix.message_attempt.list_attempted_messages(app.id, hook.id).data
    assert (attempted.id, attempted.status) == (msg.id, MessageStatus.SUCCESS)


def test_failed_delivery_is_recorded_then_resent(
    svix: Svix, app: ApplicationOut, make_hook, receiver: Receiver
) -> None:
    """A 400 is a final failure (not retried); a manual resend is one more attempt."""
    hook = make_hook()
    receiver.respond(hook.url, 400, b"bad request")
    msg = svix.message.create(app.id, MessageIn(event_type="order.placed", payload={"order": 8}))

    failed = wait_for_attempt(svix, app.id, msg.id, status=MessageStatus.FAIL)
    assert (failed.response_status_code, failed.response) == (400, "bad request")
    assert failed.status_text == MessageStatusText.FAIL

    receiver.respond(hook.url, 200)
    svix.message_attempt.resend(app.id, msg.id, hook.id)
    receiver.wait_for(hook.url, 2)
    wait_for_attempt(svix, app.id, msg.id, trigger_type=MessageAttemptTriggerType.MANUAL, status=MessageStatus.SUCCESS)
