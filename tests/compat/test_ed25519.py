"""ed25519 endpoints as Svix has them: a `whsk_` secret key given on create or rotate, the
`whpk_` public key shown by the secret routes, `v1a,` signatures over `id.timestamp.body`.
Deliveries are verified with Python's `cryptography` and the public key alone."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from typing import Any, List

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PrivateFormat, PublicFormat, NoEncryption
from svix.api import ApplicationIn, ApplicationOut, EndpointIn, EndpointSecretRotateIn, MessageIn, Svix, SvixOptions

from support import TOKEN, Receiver, RecordedRequest, WebhookdProcess, new_secret, unique, verify_delivery


def new_keypair() -> tuple:
    """A `whsk_` secret key as Svix encodes it (seed, then public key) and its `whpk_` key."""
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return "whsk_" + base64.b64encode(seed + public).decode(), "whpk_" + base64.b64encode(public).decode()


def verify_ed25519(request: RecordedRequest, public_key: str) -> Any:
    """Verify as a receiver holding only the public key would; return the payload."""
    assert public_key.startswith("whpk_")
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key[len("whpk_") :]))
    msg_id = request.headers["webhook-id"]
    timestamp = request.headers["webhook-timestamp"]
    assert abs(time.time() - int(timestamp)) < 300, "the timestamp is fresh"
    signed = f"{msg_id}.{timestamp}.".encode() + request.body
    for entry in request.headers["webhook-signature"].split():
        version, _, signature = entry.partition(",")
        if version != "v1a":
            continue
        try:
            key.verify(base64.b64decode(signature), signed)
            return json.loads(request.body)
        except InvalidSignature:
            continue
    raise AssertionError(f"no v1a signature verifies with {public_key}")


def versions(request: RecordedRequest) -> List[str]:
    return sorted(entry.split(",", 1)[0] for entry in request.headers["webhook-signature"].split())


def test_an_ed25519_endpoint_signs_v1a_and_rotates_with_grace(
    svix: Svix, app: ApplicationOut, receiver: Receiver
) -> None:
    secret_key, public_key = new_keypair()
    url = receiver.new_url()
    receiver.respond(url, 200)
    endpoint = svix.endpoint.create(app.id, EndpointIn(url=url, secret=secret_key))
    assert svix.endpoint.get_secret(app.id, endpoint.id).key == public_key

    svix.message.create(app.id, MessageIn(event_type="a.b", payload={"n": 1}))
    (first,) = receiver.wait_for(url)
    assert first.headers["webhook-signature"].startswith("v1a,")
    assert verify_ed25519(first, public_key) == {"n": 1}

    # A rotation without a key makes a new ed25519 key; the old one signs beside it.
    svix.endpoint.rotate_secret(app.id, endpoint.id, EndpointSecretRotateIn())
    rotated = svix.endpoint.get_secret(app.id, endpoint.id).key
    assert rotated.startswith("whpk_") and rotated != public_key
    svix.message.create(app.id, MessageIn(event_type="a.b", payload={"n": 2}))
    second = receiver.wait_for(url, 2)[1]
    assert versions(second) == ["v1a", "v1a"]
    assert verify_ed25519(second, rotated) == verify_ed25519(second, public_key) == {"n": 2}

    # A `whsec_` key switches the endpoint back to HMAC; the ed25519 keys still sign for a while.
    hmac_secret = new_secret()
    svix.endpoint.rotate_secret(app.id, endpoint.id, EndpointSecretRotateIn(key=hmac_secret))
    assert svix.endpoint.get_secret(app.id, endpoint.id).key == hmac_secret
    svix.message.create(app.id, MessageIn(event_type="a.b", payload={"n": 3}))
    third = receiver.wait_for(url, 3)[2]
    assert versions(third) == ["v1", "v1a", "v1a"]
    assert verify_delivery(third, hmac_secret) == {"n": 3}
    assert verify_ed25519(third, rotated) == {"n": 3}


def test_the_setting_makes_new_endpoints_ed25519(tmp_path: Path, receiver: Receiver) -> None:
    binary = str(Path(os.environ["WEBHOOKD_BIN"]).resolve())
    server = WebhookdProcess(
        binary, tmp_path, f"sqlite://{tmp_path}/webhookd.db", extra_env={"WEBHOOKD_SIGNATURE_TYPE": "ed25519"}
    )
    server.start()
    try:
        svix = Svix(TOKEN, SvixOptions(server_url=server.base_url))
        app = svix.application.create(ApplicationIn(name="ed25519", uid=unique("app")))
        url = receiver.new_url()
        receiver.respond(url, 200)
        endpoint = svix.endpoint.create(app.id, EndpointIn(url=url))
        public_key = svix.endpoint.get_secret(app.id, endpoint.id).key
        assert public_key.startswith("whpk_")
        svix.message.create(app.id, MessageIn(event_type="a.b", payload={"hello": "world"}))
        (request,) = receiver.wait_for(url)
        assert versions(request) == ["v1a"]
        assert verify_ed25519(request, public_key) == {"hello": "world"}
        # A secret given on create still wins over the setting.
        hmac_secret = new_secret()
        other = svix.endpoint.create(app.id, EndpointIn(url=receiver.new_url(), secret=hmac_secret))
        assert svix.endpoint.get_secret(app.id, other.id).key == hmac_secret
    finally:
        server.stop()
