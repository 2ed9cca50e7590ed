"""App-scoped access through the Svix SDK: app_portal_access, expire_all, logout.

The server runs in local mode, where any other bearer token is accepted, but an
``appsk_`` token is always checked and always limited to its application.
"""

from __future__ import annotations

from svix.api import (
    ApplicationIn,
    ApplicationOut,
    ApplicationTokenExpireIn,
    AppPortalAccessIn,
    AppPortalCapability,
    EndpointIn,
    Svix,
    SvixOptions,
)

from support import api_error, unique


def app_client(svix: Svix, webhookd, app_id: str, **access: object) -> tuple[Svix, str]:
    """A client that uses a new portal token of ``app_id``, and the portal link."""
    out = svix.authentication.app_portal_access(app_id, AppPortalAccessIn(**access))
    assert out.token.startswith("appsk_")
    return Svix(out.token, SvixOptions(server_url=webhookd.base_url)), out.url


def test_app_portal_access_scopes_the_token(svix: Svix, webhookd, app: ApplicationOut) -> None:
    scoped, url = app_client(svix, webhookd, app.id)
    assert url.startswith(f"{webhookd.base_url}/portal#key=appsk_")

    assert scoped.application.get(app.uid).id == app.id
    endpoint = scoped.endpoint.create(app.id, EndpointIn(url="https://portal.example.com/hook"))
    assert scoped.endpoint.get_secret(app.id, endpoint.id).key.startswith("whsec_")
    assert [e.id for e in scoped.endpoint.list(app.uid).data] == [endpoint.id]

    other = svix.application.create(ApplicationIn(name="someone else", uid=unique("other")))
    api_error(403, lambda: scoped.application.get(other.id))
    api_error(403, lambda: scoped.endpoint.list(other.uid))
    api_error(403, lambda: scoped.application.list())
    api_error(403, lambda: scoped.application.create(ApplicationIn(name="mine now")))


def test_capabilities_limit_what_the_token_does(svix: Svix, webhookd, app: ApplicationOut) -> None:
    endpoint = svix.endpoint.create(app.id, EndpointIn(url="https://portal.example.com/hook"))
    viewer, _ = app_client(
        svix, webhookd, app.id, capabilities=[AppPortalCapability.VIEW_BASE], expiry=3600, session_id="user_1"
    )
    assert viewer.endpoint.get(app.id, endpoint.id).url == "https://portal.example.com/hook"
    api_error(403, lambda: viewer.endpoint.get_secret(app.id, endpoint.id))
    api_error(403, lambda: viewer.endpoint.create(app.id, EndpointIn(url="https://x.example.com")))


def test_app_portal_access_creates_the_application(svix: Svix, webhookd) -> None:
    uid = unique("portal")
    scoped, _ = app_client(svix, webhookd, uid, application=ApplicationIn(name="Created by a link"))
    assert scoped.application.get(uid).name == "Created by a link"
    api_error(404, lambda: svix.authentication.app_portal_access(unique("nobody"), AppPortalAccessIn()))
    api_error(422, lambda: svix.authentication.app_portal_access(uid, AppPortalAccessIn(expiry=10)))


def test_expire_all_and_logout_revoke(svix: Svix, webhookd, app: ApplicationOut) -> None:
    first, _ = app_client(svix, webhookd, app.id, session_id="user_1")
    second, _ = app_client(svix, webhookd, app.id, session_id="user_2")
    third, _ = app_client(svix, webhookd, app.id)

    svix.authentication.expire_all(app.id, ApplicationTokenExpireIn(session_ids=["user_1"]))
    api_error(401, lambda: first.application.get(app.id))
    assert second.application.get(app.id).id == app.id

    svix.authentication.expire_all(app.uid, ApplicationTokenExpireIn(expiry=0))
    api_error(401, lambda: second.application.get(app.id))
    api_error(401, lambda: third.application.get(app.id))

    fourth, _ = app_client(svix, webhookd, app.id)
    assert fourth.application.get(app.id).id == app.id
    fourth.authentication.logout()
    api_error(401, lambda: fourth.application.get(app.id))
