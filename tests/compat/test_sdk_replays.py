"""The endpoint methods beyond CRUD through the Svix SDK: replay-missing, bulk-replay,
send-example and attempt-stats, each checked by what the receiver gets."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from svix.api import (
    ApplicationOut,
    BulkReplayIn,
    EndpointPatch,
    EventExampleIn,
    EventTypeIn,
    MessageGetOptions,
    MessageIn,
    MessageStatus,
    ReplayIn,
    Svix,
)

from support import Receiver, api_error, unique, verify_delivery, wait_for_attempt, wait_until


def _since() -> datetime:
    return datetime.now(timezone.utc) - timedelta(minutes=5)


def _finished(svix: Svix, task_id: str, kind: str) -> dict:
    task = svix.background_task.get(task_id)
    assert (task.status.value, task.task.value) == ("finished", kind)
    return task.data


def test_replay_missing_sends_only_what_the_endpoint_never_got(
    svix: Svix, app: ApplicationOut, make_hook, receiver: Receiver
) -> None:
    first = make_hook()
    receiver.respond(first.url, 200)
    delivered = svix.message.create(app.id, MessageIn(event_type="order.placed", payload={"n": 1}))
    receiver.wait_for(first.url)
    wait_for_attempt(svix, app.id, delivered.id, status=MessageStatus.SUCCESS)
    # Sent while the endpoint was disabled: no delivery to it at all.
    svix.endpoint.patch(app.id, first.id, EndpointPatch(disabled=True))
    missed = svix.message.create(app.id, MessageIn(event_type="order.placed", payload={"n": 2}))
    other_type = svix.message.create(app.id, MessageIn(event_type="user.created", payload={"n": 3}))
    svix.endpoint.patch(app.id, first.id, EndpointPatch(disabled=False, event_types=["order.placed"]))

    out = svix.endpoint.replay_missing(app.id, first.id, ReplayIn(since=_since()))
    assert out.task.value == "endpoint.replay"
    assert _finished(svix, out.id, "endpoint.replay") == {"messagesSent": 1}
    requests = receiver.wait_for(first.url, 2)
    assert [verify_delivery(r, first.secret) for r in requests] == [{"n": 1}, {"n": 2}]
    assert requests[1].headers["webhook-id"] == missed.id
    assert svix.message_attempt.list_by_msg(app.id, other_type.id).data == []
    # A second replay finds nothing missing.
    again = svix.endpoint.replay_missing(app.id, first.id, ReplayIn(since=_since()))
    assert _finished(svix, again.id, "endpoint.replay") == {"messagesSent": 0}
    # A brand-new endpoint gets the history it missed.
    late = make_hook()
    receiver.respond(late.url, 200)
    svix.endpoint.replay_missing(app.id, late.id, ReplayIn(since=_since()))
    got = receiver.wait_for(late.url, 3)
    assert sorted(r.headers["webhook-id"] for r in got) == sorted([delivered.id, missed.id, other_type.id])


def test_bulk_replay_sends_finished_deliveries_again_by_filter(
    svix: Svix, app: ApplicationOut, make_hook, receiver: Receiver
) -> None:
    hook = make_hook()
    receiver.respond(hook.url, 400)
    tagged = svix.message.create(app.id, MessageIn(event_type="a.b", payload={"n": 1}, tags=["vip"]))
    plain = svix.message.create(app.id, MessageIn(event_type="a.b", payload={"n": 2}))
    for msg in (tagged, plain):
        wait_for_attempt(svix, app.id, msg.id, status=MessageStatus.FAIL)
    receiver.respond(hook.url, 200)

    out = svix.endpoint.bulk_replay(
        app.id, hook.id, BulkReplayIn(since=_since(), tag="vip", status=MessageStatus.FAIL, status_code_class=400)
    )
    assert _finished(svix, out.id, "endpoint.bulk-replay") == {"messagesSent": 1}
    wait_for_attempt(svix, app.id, tagged.id, status=MessageStatus.SUCCESS)
    # A filter that matches nothing replays nothing.
    none = svix.endpoint.bulk_replay(app.id, hook.id, BulkReplayIn(since=_since(), event_types=["other"]))
    assert _finished(svix, none.id, "endpoint.bulk-replay") == {"messagesSent": 0}
    # Successful deliveries are replayed too.
    everything = svix.endpoint.bulk_replay(app.id, hook.id, BulkReplayIn(since=_since()))
    assert _finished(svix, everything.id, "endpoint.bulk-replay") == {"messagesSent": 2}
    wait_until(lambda: len(receiver.requests(hook.url)) >= 5, what="the replayed deliveries")

    def counts() -> bool:
        stats = svix.endpoint.get_attempt_stats(app.id, hook.id)
        return (stats.success, stats.fail, stats.canceled) == (2, 0, 0)

    wait_until(counts, what="both deliveries counted as successes")


def test_send_example_posts_the_schema_example_to_that_endpoint_alone(
    svix: Svix, app: ApplicationOut, make_hook, receiver: Receiver
) -> None:
    name = unique("invoice.paid")
    svix.event_type.create(
        EventTypeIn(
            name=name,
            description="An invoice was paid",
            schemas={"1": {"type": "object", "examples": [{"invoice": 1}, {"invoice": 2}]}},
        )
    )
    hook, bystander = make_hook(), make_hook()
    receiver.respond(hook.url, 200)
    sent = svix.endpoint.send_example(app.id, hook.id, EventExampleIn(event_type=name, example_index=1))
    assert (sent.event_type, sent.payload) == (name, {"invoice": 2})
    (request,) = receiver.wait_for(hook.url)
    assert verify_delivery(request, hook.secret) == {"invoice": 2}
    assert request.headers["webhook-id"] == sent.id
    assert receiver.requests(bystander.url) == []
    assert svix.message.get(app.id, sent.id, MessageGetOptions(with_content=True)).payload == {"invoice": 2}

    bare = unique("bare")
    svix.event_type.create(EventTypeIn(name=bare, description="No schema"))
    error = api_error(422, lambda: svix.endpoint.send_example(app.id, hook.id, EventExampleIn(event_type=bare)))
    assert any(bare in detail.msg for detail in error.detail)
