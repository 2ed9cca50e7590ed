"""Plain-HTTP checks with ``requests``: the seed ``/webhooks`` routes and the HTTP details the SDKs rely on."""

from __future__ import annotations

from typing import Any, Dict

import pytest
import requests
from svix.api import MessageIn, Svix

from support import TOKEN, Receiver, WebhookdProcess, api_headers, unique, verify_delivery

TIMEOUT = 10


def call(server: WebhookdProcess, method: str, path: str, **kwargs: Any) -> requests.Response:
    kwargs.setdefault("headers", api_headers(TOKEN))
    return requests.request(method, f"{server.base_url}{path}", timeout=TIMEOUT, allow_redirects=False, **kwargs)


def register(server: WebhookdProcess, name: str, destination: str) -> requests.Response:
    return call(server, "POST", "/webhooks", json={"name": name, "destination": destination})


def assert_json_error(resp: requests.Response, status: int) -> Dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers.get("content-type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert "detail" in body, body
    return body


def test_seed_registration_then_sdk_message(webhookd: WebhookdProcess, svix: Svix, receiver: Receiver) -> None:
    name, destination = unique("joe"), receiver.new_url()
    resp = register(webhookd, name, destination)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert (body["name"], body["destination"]) == (name, destination)
    assert body["applicationId"].startswith("app_")
    assert body["endpointId"].startswith("ep_")
    assert body["secret"].startswith("whsec_")

    app = svix.application.get(name)
    assert app.id == body["applicationId"]
    assert svix.endpoint.get_secret(name, body["endpointId"]).key == body["secret"]

    again = register(webhookd, name, destination)
    assert again.status_code in (200, 201), again.text
    assert again.json()["endpointId"] == body["endpointId"], "same name and URL reuse the endpoint"

    listed = call(webhookd, "GET", "/webhooks")
    assert listed.status_code == 200, listed.text
    assert name in listed.text

    msg = svix.message.create(name, MessageIn(event_type="seed.hello", payload={"hello": name}))
    delivery = receiver.wait_for(destination)[0]
    assert verify_delivery(delivery, body["secret"]) == {"hello": name}
    assert delivery.headers["webhook-id"] == msg.id


@pytest.mark.parametrize("destination", ["not a url", "ftp://127.0.0.1/x", ""])
def test_seed_rejects_invalid_destination(webhookd: WebhookdProcess, destination: str) -> None:
    assert_json_error(register(webhookd, unique("bad"), destination), 422)


def test_health(webhookd: WebhookdProcess, svix: Svix) -> None:
    svix.health.get()
    assert requests.get(f"{webhookd.base_url}/api/v1/health", timeout=TIMEOUT).status_code == 204


@pytest.mark.parametrize("path", ["/api/v1/app", "/api/v1/app/", "/api/v1/event-type/"])
def test_paths_work_with_and_without_trailing_slash(webhookd: WebhookdProcess, path: str) -> None:
    resp = call(webhookd, "GET", path)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert {"data", "iterator", "prevIterator", "done"} <= body.keys(), body


def test_unknown_route_is_a_json_404(webhookd: WebhookdProcess) -> None:
    assert_json_error(call(webhookd, "GET", "/api/v1/no-such-thing"), 404)


def test_malformed_json_is_a_json_400(webhookd: WebhookdProcess) -> None:
    headers = {**api_headers(TOKEN), "content-type": "application/json"}
    assert_json_error(call(webhookd, "POST", "/api/v1/app", data=b"{not json", headers=headers), 400)


def test_validation_error_shape(webhookd: WebhookdProcess) -> None:
    body = assert_json_error(call(webhookd, "POST", "/api/v1/app", json={"name": "x", "uid": "bad uid!"}), 422)
    assert isinstance(body["detail"], list) and body["detail"], body
    assert {"loc", "msg", "type"} <= body["detail"][0].keys(), body
