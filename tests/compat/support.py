"""Helpers shared by the webhookd compatibility suite.

Nothing here talks to webhookd by itself: this module holds the webhook
receiver (a real HTTP server on loopback that records every request), the
process wrapper that starts and stops ``webhookd serve``, and small helpers
(polling with a deadline, unique names, secrets, signature checks) that the
fixtures in ``conftest.py`` and the tests use.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, TypeVar
from urllib.parse import urlsplit

import pytest
from standardwebhooks.webhooks import Webhook
from svix.api import MessageAttemptListByMsgOptions
from svix.exceptions import HttpError, HTTPValidationError

T = TypeVar("T")

TOKEN = "testsk_local"  # any token works in local mode (loopback listener, no token configured)
LOOPBACK = "127.0.0.1"
POLL_INTERVAL = 0.05
WAIT_TIMEOUT = 20.0
STARTUP_TIMEOUT = 30.0


# --------------------------------------------------------------------------
# small helpers


def wait_until(
    condition: Callable[[], T],
    *,
    what: str,
    timeout: float = WAIT_TIMEOUT,
    interval: float = POLL_INTERVAL,
) -> T:
    """Poll ``condition`` until it returns something truthy and return that.

    Raises ``AssertionError`` naming ``what`` once ``timeout`` seconds passed.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def unique(prefix: str) -> str:
    """A name no other test (or earlier run against the same DB) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def new_secret() -> str:
    """A fresh Standard Webhooks secret: ``whsec_`` + base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(os.urandom(24)).decode("ascii")


def free_port() -> int:
    """A TCP port on loopback that was free a moment ago (bind 0, then close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def tail(path: Path, lines: int = 80) -> str:
    """The last ``lines`` lines of a text file (empty if it does not exist)."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def api_error(status: int, call: Callable[[], Any]) -> Exception:
    """Run an SDK call that must fail with HTTP ``status``; return the SDK's exception.

    The SDK raises ``HTTPValidationError`` (``detail`` parsed as a list of
    ``{loc, msg, type}``) for 422 and ``HttpError`` (``code``, ``detail``) for
    every other non-2xx status.
    """
    expected = HTTPValidationError if status == 422 else HttpError
    with pytest.raises(expected) as info:
        call()
    assert info.value.status_code == status, f"expected {status}, got {info.value!r}"
    return info.value


def collect_pages(fetch: Callable[[Optional[str]], Any], page_size: int, max_pages: int = 1000) -> List[Any]:
    """Every item of a Svix list, following ``iterator`` until ``done``.

    ``fetch(iterator)`` returns one ``ListResponse*`` page of at most ``page_size`` items.
    """
    items: List[Any] = []
    iterator: Optional[str] = None
    for _ in range(max_pages):  # bounded: a broken cursor must not loop forever
        page = fetch(iterator)
        assert len(page.data) <= page_size, f"page of {len(page.data)} items over limit {page_size}"
        items.extend(page.data)
        if page.done:
            return items
        assert page.iterator, "a page that is not done must carry an iterator"
        iterator = page.iterator
    raise AssertionError(f"paging did not reach done within {max_pages} pages")


def wait_for_attempt(svix: Any, app_id: str, msg_id: str, **match: Any) -> Any:
    """Wait until ``list_by_msg`` shows an attempt whose fields equal ``match``; return it."""

    def found() -> Any:
        attempts = svix.message_attempt.list_by_msg(app_id, msg_id, MessageAttemptListByMsgOptions(with_content=True)).data
        return next((a for a in attempts if all(getattr(a, k) == v for k, v in match.items())), None)

    return wait_until(found, what=f"an attempt of {msg_id} with {match}")


# --------------------------------------------------------------------------
# the webhook receiver


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the receiver saw it."""

    method: str
    path: str  # path without the query string
    raw_path: str  # path with the query string, as sent
    headers: Dict[str, str]  # names lower-cased; repeated headers joined by ", "
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Script:
    status: int = 200
    body: bytes = b"ok"
    headers: Dict[str, str] = field(default_factory=dict)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_ReceiverHTTPServer"

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    # trailers, up to the empty line
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # CRLF after each chunk
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        body = self._read_body()
        headers: Dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        path = urlsplit(self.path).path
        self.server.owner._record(RecordedRequest(self.command, path, self.path, headers, body))
        script = self.server.owner._script_for(path)
        self.send_response(script.status)
        for name, value in script.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(script.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(script.body)

    do_POST = do_GET = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # keep pytest output clean; every request is recorded instead


class _ReceiverHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: "Receiver") -> None:
        self.owner = owner
        super().__init__((LOOPBACK, 0), _Handler)


class Receiver:
    """A webhook receiver on 127.0.0.1 that records every request.

    Every test gets its own path (``new_url()``), so stray retries meant for
    another test never disturb it. Paths answer 200 ``ok`` unless scripted
    with ``respond()``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: List[RecordedRequest] = []
        self._scripts: Dict[str, _Script] = {}
        self._httpd = _ReceiverHTTPServer(self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL},
            name="webhook-receiver",
            daemon=True,
        )

    def __enter__(self) -> "Receiver":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def new_url(self, label: str = "hook") -> str:
        """A URL on a path that nobody used before."""
        return f"{self.base_url}/{unique(label)}"

    def respond(
        self, url_or_path: str, status: int, body: bytes = b"", headers: Optional[Dict[str, str]] = None
    ) -> None:
        """Answer every request to this path with ``status`` from now on."""
        self._scripts[_path_of(url_or_path)] = _Script(status, body, dict(headers or {}))

    def requests(self, url_or_path: Optional[str] = None) -> List[RecordedRequest]:
        """A snapshot of the requests received so far (to one path, or all)."""
        with self._lock:
            found = list(self._requests)
        if url_or_path is None:
            return found
        path = _path_of(url_or_path)
        return [r for r in found if r.path == path]

    def wait_for(self, url_or_path: str, count: int = 1, *, timeout: float = WAIT_TIMEOUT) -> List[RecordedRequest]:
        """Wait until at least ``count`` requests reached this path; return them all."""

        def enough() -> Optional[List[RecordedRequest]]:
            got = self.requests(url_or_path)
            return got if len(got) >= count else None

        return wait_until(enough, what=f"{count} request(s) to {_path_of(url_or_path)}", timeout=timeout)

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _script_for(self, path: str) -> _Script:
        with self._lock:
            return self._scripts.get(path, _Script())


def _path_of(url_or_path: str) -> str:
    return urlsplit(url_or_path).path or "/"


def verify_delivery(request: RecordedRequest, secret: str, *, json_parse: bool = True) -> Any:
    """Check one delivery the way a receiver would; return the verified payload.

    Uses the Standard Webhooks reference library, which checks the
    ``webhook-id``/``webhook-timestamp``/``webhook-signature`` headers, the
    timestamp tolerance (5 min) and the HMAC over the exact body bytes.
    """
    assert request.method == "POST", request
    return Webhook(secret).verify(request.body, request.headers, json_parse=json_parse)


# --------------------------------------------------------------------------
# the server under test


class ServerStartError(RuntimeError):
    pass


class WebhookdProcess:
    """``$WEBHOOKD_BIN serve`` as a subprocess on a free loopback port.

    ``env`` is added to a copy of the environment from which every inherited
    ``WEBHOOKD_*`` variable was removed, so a developer's shell settings (an API
    token, say) cannot leak into the run.
    """

    def __init__(
        self, binary: str, workdir: Path, database_url: str, extra_env: Optional[Dict[str, str]] = None
    ) -> None:
        self.binary = binary
        self.workdir = workdir
        self.database_url = database_url
        self.port = free_port()
        self.log_path = workdir / "webhookd.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOKD_")}
        self.env.update(
            {
                "WEBHOOKD_DATABASE_URL": database_url,
                "WEBHOOKD_LISTEN": f"{LOOPBACK}:{self.port}",
                "WEBHOOKD_RETRY_SCHEDULE": "1s,1s",
                "WEBHOOKD_LOG_FORMAT": "text",
            }
        )
        self.env.update(extra_env or {})
        self.proc: Optional[subprocess.Popen] = None
        self._log_file = None

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Start the server and wait until ``GET /api/v1/health`` answers 204."""
        self._log_file = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [self.binary, "serve"],
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
            )
        except OSError as err:
            raise ServerStartError(f"cannot run {self.binary!r}: {err}") from err
        try:
            wait_until(self._healthy, what=f"{self.base_url}/api/v1/health to answer 204", timeout=timeout)
        except (AssertionError, ServerStartError) as err:
            self.stop()
            raise ServerStartError(f"{err}\n--- webhookd log (tail) ---\n{self.log_tail()}") from None

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise ServerStartError(f"webhookd exited with code {self.proc.returncode} during start-up")
        try:
            with urllib.request.urlopen(f"{self.base_url}/api/v1/health", timeout=1) as resp:
                return resp.status == 204
        except (urllib.error.URLError, ConnectionError, OSError):
            return False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> Optional[int]:
        """Stop the server (SIGTERM, then SIGKILL after 10 s); return its exit code."""
        code = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
            code = self.proc.returncode
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return code

    def log_tail(self, lines: int = 80) -> str:
        return tail(self.log_path, lines)


def api_headers(token: str) -> Dict[str, str]:
    """Headers for plain-HTTP calls made the way the SDKs authenticate."""
    return {"Authorization": f"Bearer {token}", "Accept": "application/json"}
