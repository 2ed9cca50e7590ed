"""Applications through the Svix SDK: CRUD, uid addressing, paging, get_or_create, idempotency."""

from __future__ import annotations

from svix.api import (
    ApplicationCreateOptions,
    ApplicationIn,
    ApplicationListOptions,
    ApplicationPatch,
    Ordering,
    Svix,
)

from support import api_error, collect_pages, unique


def create_apps(svix: Svix, count: int, label: str) -> list[str]:
    return [svix.application.create(ApplicationIn(name=f"{label} {i}", uid=unique(label))).id for i in range(count)]


def test_application_crud(svix: Svix) -> None:
    uid = unique("crud")
    created = svix.application.create(ApplicationIn(name="Compat", uid=uid, metadata={"tier": "gold"}))
    assert created.id.startswith("app_")
    assert (created.uid, created.name, created.metadata) == (uid, "Compat", {"tier": "gold"})

    assert svix.application.get(created.id) == created
    assert svix.application.get(uid).id == created.id

    updated = svix.application.upsert(created.id, ApplicationIn(name="Renamed", uid=uid))
    assert (updated.id, updated.name, updated.uid) == (created.id, "Renamed", uid)
    assert updated.updated_at >= created.updated_at

    patched = svix.application.patch(uid, ApplicationPatch(metadata={"tier": "silver"}))
    assert (patched.id, patched.name, patched.metadata) == (created.id, "Renamed", {"tier": "silver"})
    assert svix.application.get(created.id).metadata == {"tier": "silver"}

    svix.application.delete(created.id)
    err = api_error(404, lambda: svix.application.get(created.id))
    assert err.code, "errors carry a code"
    api_error(404, lambda: svix.application.get(uid))


def test_application_upsert_creates(svix: Svix) -> None:
    uid = unique("upsert")
    created = svix.application.upsert(uid, ApplicationIn(name="Upserted", uid=uid))
    assert created.id.startswith("app_") and created.uid == uid
    assert svix.application.get(uid).id == created.id


def test_application_list_paging(svix: Svix) -> None:
    mine = create_apps(svix, 5, "page")

    apps = collect_pages(
        lambda it: svix.application.list(ApplicationListOptions(limit=2, iterator=it)),
        page_size=2,
    )
    ids = [a.id for a in apps]
    assert len(ids) == len(set(ids)), "paging returned an application twice"
    assert set(mine) <= set(ids)

    first = svix.application.list(ApplicationListOptions(limit=1))
    assert len(first.data) == 1 and not first.done and first.iterator


def test_application_list_order(svix: Svix) -> None:
    mine = create_apps(svix, 3, "order")
    page = svix.application.list(ApplicationListOptions(limit=250, order=Ordering.DESCENDING))
    assert [a.id for a in page.data if a.id in mine] == list(reversed(mine))


def test_get_or_create(svix: Svix) -> None:
    uid = unique("goc")
    first = svix.application.get_or_create(ApplicationIn(name="First", uid=uid))
    again = svix.application.get_or_create(ApplicationIn(name="Second", uid=uid))
    assert first.id.startswith("app_")
    assert again.id == first.id
    assert again.name == "First", "get_or_create returns the existing application unchanged"


def test_idempotency_key_replays_first_response(svix: Svix) -> None:
    options = ApplicationCreateOptions(idempotency_key=unique("idem"))
    body = ApplicationIn(name="Idempotent", uid=unique("idem"))
    first = svix.application.create(body, options)
    second = svix.application.create(body, options)
    assert second.id == first.id
