"""Event types through the Svix SDK beyond CRUD: importing an OpenAPI document's webhooks
(dry run, replaceAll) and Svix's featureFlags and groupName, stored and echoed."""

from __future__ import annotations

import json

from svix.api import EventTypeImportOpenApiIn, EventTypeIn, EventTypePatch, EventTypeUpsertIn, Svix

from support import unique


def spec(*names: str) -> dict:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Webhooks", "version": "1.0.0"},
        "webhooks": {
            name: {
                "post": {
                    "description": f"{name} happened",
                    "x-svix-group-name": "billing",
                    "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Invoice"}}}},
                    "responses": {"200": {"description": "ok"}},
                }
            }
            for name in names
        },
        "components": {"schemas": {"Invoice": {"type": "object", "properties": {"id": {"type": "string"}}}}},
    }


def test_import_openapi_creates_replaces_and_archives(svix: Svix) -> None:
    prefix = unique("imp")
    paid, failed, stale = f"{prefix}.paid", f"{prefix}.failed", f"{prefix}.stale"
    svix.event_type.create(EventTypeIn(name=stale, description="old"))

    dry = svix.event_type.import_openapi(EventTypeImportOpenApiIn(spec=spec(paid), dry_run=True))
    assert dry.data.modified == [paid]
    assert [t.name for t in dry.data.to_modify] == [paid]
    assert dry.data.to_modify[0].group_name == "billing"
    assert paid not in [t.name for t in svix.event_type.list().data]

    out = svix.event_type.import_openapi(EventTypeImportOpenApiIn(spec_raw=json.dumps(spec(paid, failed))))
    assert sorted(out.data.modified) == sorted([paid, failed])
    imported = svix.event_type.get(paid)
    assert imported.description == f"{paid} happened"
    assert imported.schemas == {"1": {"type": "object", "properties": {"id": {"type": "string"}}}}
    assert imported.group_name == "billing"

    # Everything else in the catalogue is archived by replaceAll.
    svix.event_type.import_openapi(EventTypeImportOpenApiIn(spec=spec(paid, failed), replace_all=True))
    assert svix.event_type.get(stale).archived is True
    assert svix.event_type.get(failed).archived is False


def test_feature_flags_and_group_names_are_stored_and_echoed(svix: Svix) -> None:
    name = unique("flagged")
    created = svix.event_type.create(
        EventTypeIn(name=name, description="beta only", feature_flags=["beta", "cohort-2"], group_name="users")
    )
    assert (created.feature_flags, created.feature_flag, created.group_name) == (["beta", "cohort-2"], "beta", "users")
    read = svix.event_type.get(name)
    assert (read.feature_flags, read.group_name) == (["beta", "cohort-2"], "users")
    patched = svix.event_type.patch(name, EventTypePatch(group_name="accounts"))
    assert (patched.feature_flags, patched.group_name) == (["beta", "cohort-2"], "accounts")
    replaced = svix.event_type.upsert(name, EventTypeUpsertIn(description="for all"))
    assert (replaced.feature_flags, replaced.group_name) == (None, None)
