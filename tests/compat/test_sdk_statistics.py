"""The statistics resource through the Svix SDK: usage per application and the event types
each application's endpoints subscribe to, both background tasks read back as Svix describes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from svix.api import AppUsageStatsIn, ApplicationOut, MessageIn, Svix

from support import api_error, unique


def test_app_usage_counts_deliveries_in_the_window(svix: Svix, app: ApplicationOut, make_hook) -> None:
    make_hook()
    make_hook(event_types=["a.b"])
    svix.message.create(app.id, MessageIn(event_type="a.b", payload={}))
    svix.message.create(app.id, MessageIn(event_type="c.d", payload={}))
    now = datetime.now(timezone.utc)
    missing = unique("nobody")
    out = svix.statistics.aggregate_app_stats(
        AppUsageStatsIn(since=now - timedelta(minutes=5), until=now + timedelta(minutes=1), app_ids=[app.uid, missing])
    )
    assert (out.task.value, out.status.value) == ("application.stats", "finished")
    assert out.unresolved_app_ids == [missing]
    task = svix.background_task.get(out.id)
    assert task.data == {"appStats": [{"appId": app.id, "appUid": app.uid, "messageDestinations": 3}]}

    everyone = svix.statistics.aggregate_app_stats(
        AppUsageStatsIn(since=now - timedelta(minutes=5), until=now + timedelta(minutes=1))
    )
    stats = svix.background_task.get(everyone.id).data["appStats"]
    assert {"appId": app.id, "appUid": app.uid, "messageDestinations": 3} in stats
    api_error(
        422,
        lambda: svix.statistics.aggregate_app_stats(
            AppUsageStatsIn(since=now - timedelta(minutes=5), until=now, app_ids=[missing])
        ),
    )


def test_event_type_aggregate_lists_subscriptions(svix: Svix, app: ApplicationOut, make_hook) -> None:
    make_hook(event_types=["b.two", "a.one"])
    make_hook(event_types=["a.one"])
    out = svix.statistics.aggregate_event_types()
    assert out.task.value == "event-type.aggregate"
    rows = svix.background_task.get(out.id).data["event_types"]
    assert {"appId": app.id, "explicitlySubscribedEventTypes": ["a.one", "b.two"], "hasCatchAllEndpoint": False} in rows
    make_hook()
    rows = svix.background_task.get(svix.statistics.aggregate_event_types().id).data["event_types"]
    assert {"appId": app.id, "explicitlySubscribedEventTypes": ["a.one", "b.two"], "hasCatchAllEndpoint": True} in rows
