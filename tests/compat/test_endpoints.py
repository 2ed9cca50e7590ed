"""Endpoints through the Svix SDK: CRUD with a given secret and headers, secret, custom headers."""

from __future__ import annotations

from typing import Dict

from svix.api import (
    ApplicationOut,
    EndpointHeadersIn,
    EndpointHeadersPatchIn,
    EndpointIn,
    EndpointListOptions,
    EndpointPatch,
    EndpointUpsertIn,
    Svix,
)

from support import Receiver, api_error, collect_pages, unique


def lower_keys(headers: Dict[str, str]) -> Dict[str, str]:
    """Header names are case-insensitive; compare them lower-cased."""
    return {k.lower(): v for k, v in headers.items()}


def test_endpoint_crud(svix: Svix, app: ApplicationOut, make_hook, receiver: Receiver) -> None:
    uid = unique("ep")
    hook = make_hook(
        uid=uid,
        description="compat endpoint",
        metadata={"team": "blue"},
        headers={"X-Compat": "yes"},
    )
    ep = hook.endpoint
    assert ep.id.startswith("ep_")
    assert (ep.uid, ep.url, ep.description, ep.metadata) == (uid, hook.url, "compat endpoint", {"team": "blue"})
    assert not ep.disabled

    assert svix.endpoint.get(app.id, ep.id) == ep
    assert svix.endpoint.get(app.uid, uid).id == ep.id, "app and endpoint are addressable by uid"
    assert svix.endpoint.get_secret(app.id, ep.id).key == hook.secret

    listed = collect_pages(lambda it: svix.endpoint.list(app.id, EndpointListOptions(limit=1, iterator=it)), 1)
    assert [e.id for e in listed] == [ep.id]

    patched = svix.endpoint.patch(app.id, ep.id, EndpointPatch(description="patched"))
    assert (patched.id, patched.description, patched.url, patched.uid) == (ep.id, "patched", hook.url, uid)

    new_url = receiver.new_url()
    updated = svix.endpoint.upsert(app.id, ep.id, EndpointUpsertIn(url=new_url, description="upserted", uid=uid))
    assert (updated.id, updated.url, updated.description) == (ep.id, new_url, "upserted")
    assert svix.endpoint.get_secret(app.id, ep.id).key == hook.secret, "an update keeps the secret"

    svix.endpoint.delete(app.id, ep.id)
    api_error(404, lambda: svix.endpoint.get(app.id, ep.id))
    assert svix.endpoint.list(app.id).data == []


def test_endpoint_generated_secret(svix: Svix, app: ApplicationOut, receiver: Receiver) -> None:
    ep = svix.endpoint.create(app.id, EndpointIn(url=receiver.new_url()))
    key = svix.endpoint.get_secret(app.id, ep.id).key
    assert key.startswith("whsec_") and len(key) > len("whsec_") + 20


def test_endpoint_headers(svix: Svix, app: ApplicationOut, make_hook) -> None:
    ep = make_hook(headers={"X-Compat": "yes"}).endpoint

    got = svix.endpoint.get_headers(app.id, ep.id)
    assert lower_keys(got.headers) == {"x-compat": "yes"}
    assert got.sensitive == []

    svix.endpoint.set_headers(app.id, ep.id, EndpointHeadersIn(headers={"X-One": "1", "X-Two": "2"}))
    assert lower_keys(svix.endpoint.get_headers(app.id, ep.id).headers) == {"x-one": "1", "x-two": "2"}

    svix.endpoint.patch_headers(
        app.id, ep.id, EndpointHeadersPatchIn(headers={"X-Three": "3"}, delete_headers=["X-One"])
    )
    assert lower_keys(svix.endpoint.get_headers(app.id, ep.id).headers) == {"x-two": "2", "x-three": "3"}
