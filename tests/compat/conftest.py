"""Fixtures of the webhookd compatibility suite.

The suite drives a real ``webhookd serve`` with the official Svix Python SDK
and checks every delivery with the Standard Webhooks reference verifier.

Environment:

* ``WEBHOOKD_BIN`` (required for every test that needs the server): path of
  the ``webhookd`` binary, e.g. ``target/debug/webhookd``.
* ``WEBHOOKD_TEST_DATABASE_URL`` (optional): a ``postgres://`` URL of a server
  where the suite may create databases. When set, every server test runs a
  second time against a fresh PostgreSQL database (needs ``psycopg``).

Run from the repository root::

    pip install -r tests/compat/requirements.txt
    cargo build -p webhookd
    WEBHOOKD_BIN=target/debug/webhookd python -m pytest tests/compat

The server listens on a free loopback port with no API token, so it runs in
local mode and accepts any bearer token; the suite uses ``testsk_local``.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, List, Optional
from urllib.parse import urlsplit, urlunsplit

import pytest
from svix.api import ApplicationIn, ApplicationOut, EndpointIn, EndpointOut, Svix, SvixOptions
from svix.exceptions import HttpError

from support import TOKEN, Receiver, ServerStartError, WebhookdProcess, new_secret, unique

BIN_ENV = "WEBHOOKD_BIN"
PG_ENV = "WEBHOOKD_TEST_DATABASE_URL"

BACKENDS: List[str] = ["sqlite"] + (["postgres"] if os.environ.get(PG_ENV) else [])


# --------------------------------------------------------------------------
# the server


def _binary() -> str:
    binary = os.environ.get(BIN_ENV)
    if not binary:
        pytest.fail(
            f"{BIN_ENV} is not set: point it at the webhookd binary, "
            f"e.g. {BIN_ENV}=target/debug/webhookd python -m pytest tests/compat",
            pytrace=False,
        )
    path = Path(binary).resolve()
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"{BIN_ENV}={binary!r} is not an executable file", pytrace=False)
    return str(path)


@dataclass
class PostgresDatabase:
    """A throw-away database on the server named by ``WEBHOOKD_TEST_DATABASE_URL``."""

    admin_url: str
    name: str

    @property
    def url(self) -> str:
        parts = urlsplit(self.admin_url)
        return urlunsplit(parts._replace(path=f"/{self.name}"))

    def _admin(self, statement: str) -> None:
        import psycopg  # only needed for this backend
        from psycopg import sql

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL(statement).format(sql.Identifier(self.name)))

    def create(self) -> None:
        self._admin("CREATE DATABASE {}")

    def drop(self) -> None:
        self._admin("DROP DATABASE IF EXISTS {} WITH (FORCE)")


@pytest.fixture(scope="session", params=BACKENDS)
def webhookd(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebhookdProcess]:
    """A running ``webhookd serve`` on a fresh database (one per backend)."""
    binary = _binary()
    workdir = tmp_path_factory.mktemp(f"webhookd-{request.param}")
    database: Optional[PostgresDatabase] = None
    if request.param == "postgres":
        database = PostgresDatabase(os.environ[PG_ENV], f"webhookd_compat_{uuid.uuid4().hex[:12]}")
        database.create()
        database_url = database.url
    else:
        database_url = f"sqlite://{workdir}/webhookd.db"

    server = WebhookdProcess(binary, workdir, database_url)
    try:
        failure = None
        try:
            server.start()
        except ServerStartError as err:
            failure = f"webhookd did not start: {err}"
        if failure:
            pytest.fail(failure, pytrace=False)
        yield server
        crashed = not server.alive()
        code = server.stop()
        if crashed:
            pytest.fail(
                f"webhookd died during the run (exit code {code})\n"
                f"--- webhookd log (tail) ---\n{server.log_tail()}",
                pytrace=False,
            )
    finally:
        server.stop()
        if database is not None:
            database.drop()


@pytest.fixture(autouse=True)
def _webhookd_alive(request: pytest.FixtureRequest) -> None:
    """Before each test that uses the server, check that it is still running."""
    if "webhookd" not in request.fixturenames:
        return
    server: WebhookdProcess = request.getfixturevalue("webhookd")
    if not server.alive():
        pytest.fail(
            f"webhookd is no longer running\n--- webhookd log (tail) ---\n{server.log_tail()}",
            pytrace=False,
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Attach the tail of the server's log to every failing test's report."""
    report = yield
    server = getattr(item, "funcargs", {}).get("webhookd")
    if report.failed and isinstance(server, WebhookdProcess):
        report.sections.append(("webhookd log (tail)", server.log_tail()))
    return report


# --------------------------------------------------------------------------
# clients and receiver


@pytest.fixture(scope="session")
def svix(webhookd: WebhookdProcess) -> Svix:
    """The official SDK, configured as a user of a self-hosted server would."""
    return Svix(TOKEN, SvixOptions(server_url=webhookd.base_url))


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    """One webhook receiver for the session; each test uses its own paths."""
    with Receiver() as rcv:
        yield rcv


@pytest.fixture
def app(svix: Svix) -> Iterator[ApplicationOut]:
    """A fresh application, deleted after the test."""
    created = svix.application.create(ApplicationIn(name="compat test app", uid=unique("app")))
    yield created
    try:
        svix.application.delete(created.id)
    except HttpError:
        pass  # the test deleted it itself


@dataclass
class Hook:
    """An endpoint pointing at the receiver, with the secret it signs with."""

    endpoint: EndpointOut
    secret: str
    url: str

    @property
    def id(self) -> str:
        return self.endpoint.id


@pytest.fixture
def make_hook(svix: Svix, app: ApplicationOut, receiver: Receiver) -> Callable[..., Hook]:
    """Create endpoints of ``app`` on fresh receiver paths: ``make_hook(**EndpointIn fields)``."""

    def make(**fields: object) -> Hook:
        secret = str(fields.pop("secret", None) or new_secret())
        url = str(fields.pop("url", None) or receiver.new_url())
        endpoint = svix.endpoint.create(app.id, EndpointIn(url=url, secret=secret, **fields))
        return Hook(endpoint, secret, url)

    return make
