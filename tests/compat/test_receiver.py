"""Self-tests of the suite's own tools; they need no webhookd.

They check that the receiver records requests exactly, answers as scripted,
and that the Standard Webhooks verifier used everywhere agrees with the test
vector of DESIGN.md section 4.
"""

from __future__ import annotations

import concurrent.futures
import time
from datetime import datetime, timezone

import pytest
import requests
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from support import RecordedRequest, Receiver, new_secret, verify_delivery, wait_until

VECTOR_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
VECTOR_ID = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk"
VECTOR_TIMESTAMP = 1649367553
VECTOR_BODY = '{"email":"test@example.com","username":"test_user"}'
VECTOR_SIGNATURE = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="


def signed_post(url: str, secret: str, msg_id: str, body: bytes) -> requests.Response:
    """POST ``body`` to ``url`` signed the way webhookd signs deliveries."""
    now = datetime.now(tz=timezone.utc)
    signature = Webhook(secret).sign(msg_id, now, body.decode())
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
        "X-Custom": "kept",
    }
    return requests.post(url, data=body, headers=headers, timeout=5)


def test_standard_webhooks_vector() -> None:
    stamp = datetime.fromtimestamp(VECTOR_TIMESTAMP, tz=timezone.utc)
    assert Webhook(VECTOR_SECRET).sign(VECTOR_ID, stamp, VECTOR_BODY) == VECTOR_SIGNATURE


def test_receiver_records_exact_bytes_and_headers(receiver: Receiver) -> None:
    url, secret = receiver.new_url(), new_secret()
    body = '{"b": 1,  "a": "caf\u00e9"}'.encode()
    resp = signed_post(url, secret, "msg_test", body)
    assert (resp.status_code, resp.text) == (200, "ok")

    (got,) = receiver.wait_for(url)
    assert isinstance(got, RecordedRequest)
    assert (got.method, got.body, got.headers["x-custom"]) == ("POST", body, "kept")
    assert verify_delivery(got, secret) == {"b": 1, "a": "caf\u00e9"}
    with pytest.raises(WebhookVerificationError):
        verify_delivery(got, new_secret())
    assert receiver.requests(receiver.new_url()) == []


def test_receiver_answers_as_scripted_per_path(receiver: Receiver) -> None:
    failing, fine = receiver.new_url(), receiver.new_url()
    receiver.respond(failing, 503, b"down", {"Retry-After": "1"})
    bad = requests.post(failing, json={}, timeout=5)
    assert (bad.status_code, bad.text, bad.headers["retry-after"]) == (503, "down", "1")
    assert requests.post(fine + "?q=1", json={}, timeout=5).status_code == 200
    assert receiver.wait_for(fine)[0].raw_path.endswith("?q=1")


def test_receiver_reads_chunked_bodies(receiver: Receiver) -> None:
    url = receiver.new_url()
    requests.post(url, data=iter([b'{"a":', b" 1}"]), timeout=5)  # a generator body is sent chunked
    (got,) = receiver.wait_for(url)
    assert got.headers.get("transfer-encoding") == "chunked"
    assert got.body == b'{"a": 1}'


def test_receiver_handles_concurrent_requests(receiver: Receiver) -> None:
    url = receiver.new_url()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda i: requests.post(url, json={"i": i}, timeout=5).status_code, range(40)))
    assert codes == [200] * 40
    assert sorted(r.json()["i"] for r in receiver.wait_for(url, 40)) == list(range(40))


def test_wait_until_times_out_with_a_clear_message() -> None:
    started = time.monotonic()
    with pytest.raises(AssertionError, match="timed out after 0.2s waiting for nothing"):
        wait_until(lambda: None, what="nothing", timeout=0.2)
    assert time.monotonic() - started < 2
