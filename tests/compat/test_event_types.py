"""Event types through the Svix SDK: create, get, list, update, patch, archive, un-archive, expunge."""

from __future__ import annotations

from typing import List

from svix.api import (
    EventTypeDeleteOptions,
    EventTypeIn,
    EventTypeListOptions,
    EventTypePatch,
    EventTypeUpsertIn,
    Svix,
)

from support import api_error, collect_pages, unique

SCHEMA = {
    "1": {
        "type": "object",
        "properties": {"email": {"type": "string"}},
        "required": ["email"],
    }
}


def listed_names(svix: Svix, include_archived: bool = False) -> List[str]:
    return [
        et.name
        for et in collect_pages(
            lambda it: svix.event_type.list(
                EventTypeListOptions(limit=50, iterator=it, include_archived=include_archived)
            ),
            page_size=50,
        )
    ]


def test_event_type_crud(svix: Svix) -> None:
    name = unique("user.created").replace("-", "_")
    created = svix.event_type.create(EventTypeIn(name=name, description="A user was created", schemas=SCHEMA))
    assert (created.name, created.description, created.deprecated) == (name, "A user was created", False)
    assert not created.archived
    assert created.schemas == SCHEMA

    got = svix.event_type.get(name)
    assert (got.name, got.description, got.schemas) == (name, "A user was created", SCHEMA)
    assert name in listed_names(svix)

    updated = svix.event_type.upsert(name, EventTypeUpsertIn(description="Updated"))
    assert (updated.name, updated.description) == (name, "Updated")

    patched = svix.event_type.patch(name, EventTypePatch(deprecated=True))
    assert (patched.description, patched.deprecated) == ("Updated", True)

    svix.event_type.delete(name)  # archives
    assert svix.event_type.get(name).archived is True
    assert name not in listed_names(svix)
    assert name in listed_names(svix, include_archived=True)

    revived = svix.event_type.create(EventTypeIn(name=name, description="Back"))
    assert not revived.archived, "creating an archived name un-archives it"
    assert name in listed_names(svix)

    svix.event_type.delete(name, EventTypeDeleteOptions(expunge=True))
    api_error(404, lambda: svix.event_type.get(name))


def test_event_type_list_pages_by_name(svix: Svix) -> None:
    prefix = unique("paged").replace("-", "_")
    names = [f"{prefix}.{suffix}" for suffix in ("c", "a", "b")]
    for name in names:
        svix.event_type.create(EventTypeIn(name=name, description=name))
    everything = [
        et.name for et in collect_pages(lambda it: svix.event_type.list(EventTypeListOptions(limit=2, iterator=it)), 2)
    ]
    mine = [n for n in everything if n.startswith(prefix)]
    assert mine == sorted(names)
