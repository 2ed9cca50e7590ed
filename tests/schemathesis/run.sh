#!/usr/bin/env bash
# Hostile-input testing: schemathesis generates requests from the OpenAPI document of a live
# API-only node and checks every answer: never a 5xx, always the documented shape.
#
#   pip install -r tests/schemathesis/requirements.txt
#   cargo build -p webhookd
#   WEBHOOKD_BIN=target/debug/webhookd tests/schemathesis/run.sh [more schemathesis options]
#
# The node runs with `WEBHOOKD_ROLE=api`: it stores the endpoint URLs that schemathesis makes up
# but never delivers to them, so nothing leaves this machine. It listens on a free loopback port
# with a fresh SQLite database in a temporary directory, and in local mode (no token). The one
# operation that creates an API token is left out: a stored token ends local mode for good, and
# the rest of the run would meet nothing but 401s (the API tests cover the token routes).
#
# Two passes: one where schemathesis makes up the path parameters too (so most requests name
# resources that do not exist), and one where they name an application, endpoint, message,
# event type and task that exist, so that requests reach the handlers' logic. Each is bounded
# (`--max-examples`, a fixed `--seed`), so the run is reproducible and takes about a minute on
# two cores. Exits non-zero on any failure; the node's log is shown then.
#
# Environment: WEBHOOKD_BIN (required); SCHEMATHESIS_MAX_EXAMPLES (default 25) and
# SCHEMATHESIS_SEED (default 20260101) to explore further.
set -euo pipefail

: "${WEBHOOKD_BIN:?set WEBHOOKD_BIN to the webhookd binary, e.g. target/debug/webhookd}"
binary="$(cd "$(dirname "$WEBHOOKD_BIN")" && pwd)/$(basename "$WEBHOOKD_BIN")"
[[ -x "$binary" ]] || { echo "WEBHOOKD_BIN=$WEBHOOKD_BIN is not an executable file" >&2; exit 2; }
if ! python3 -c "import schemathesis" 2>/dev/null; then
    echo "schemathesis is not installed: pip install -r tests/schemathesis/requirements.txt" >&2
    exit 2
fi

workdir="$(mktemp -d)"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$workdir"
}
trap cleanup EXIT

show_log() {
    echo "--- webhookd log (tail) ---" >&2
    tail -n 60 "$workdir/webhookd.log" >&2 || true
}

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"

# A clean environment for the node: none of the caller's WEBHOOKD_* settings (a token, say).
node_env=(env)
while IFS= read -r name; do
    node_env+=(-u "$name")
done < <(compgen -e | grep '^WEBHOOKD_' || true)
node_env+=(
    WEBHOOKD_ROLE=api
    WEBHOOKD_LISTEN="127.0.0.1:$port"
    WEBHOOKD_DATABASE_URL="sqlite://$workdir/webhookd.db"
    WEBHOOKD_LOG_FORMAT=text
    RUST_LOG="${RUST_LOG:-warn}"
)
(cd "$workdir" && exec "${node_env[@]}" "$binary" serve >"$workdir/webhookd.log" 2>&1 </dev/null) &
server_pid=$!

deadline=$((SECONDS + 30))
until python3 -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('$base/api/v1/health', timeout=1).status != 204)" 2>/dev/null; do
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "webhookd exited during start-up" >&2
        show_log
        exit 1
    fi
    if ((SECONDS > deadline)); then
        echo "webhookd did not answer $base/api/v1/health within 30 s" >&2
        show_log
        exit 1
    fi
    sleep 0.2
done

# Every check that compares an answer with the document: no 5xx, a documented status, the
# documented content type, and a body of the documented shape.
checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
# Arguments: the options of `schemathesis` itself, then `--`, then more options of `run`.
run_schemathesis() {
    local global=()
    while (($#)) && [[ "$1" != "--" ]]; do
        global+=("$1")
        shift
    done
    (($#)) && shift
    (
        cd "$workdir"
        python3 -m schemathesis.cli --no-color "${global[@]}" run "$base/api/v1/openapi.json" \
            --url "$base" \
            --checks "$checks" \
            --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-25}" \
            --seed "${SCHEMATHESIS_SEED:-20260101}" \
            --request-timeout 10 \
            --max-redirects 0 \
            --exclude-operation-id v1.auth.token.create \
            "$@" "${extra_args[@]}"
    )
}
extra_args=("$@")

status=0
# Pass 1: every operation, path parameters generated too (so mostly unknown resources).
echo "--- schemathesis: every operation, generated paths"
run_schemathesis || status=$?

# Pass 2: the same with the path parameters naming resources that exist, so that requests reach
# the handlers' logic rather than their 404. DELETE is left out so that the resources stay.
echo "--- schemathesis: every operation but DELETE, on existing resources"
if python3 - "$base" "$workdir/schemathesis.toml" <<'PY'
import json, sys, urllib.request

base, config = sys.argv[1], sys.argv[2]

def call(method, path, body):
    request = urllib.request.Request(
        base + path, method=method, data=json.dumps(body).encode(),
        headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        sys.exit(f"{method} {path}: {error.code} {error.read().decode(errors='replace')}")

# Addressed by id, not uid: the run may well give them other uids.
app = call("POST", "/api/v1/app", {"name": "schemathesis"})["id"]
endpoint = call("POST", f"/api/v1/app/{app}/endpoint", {"url": "https://receiver.invalid/hook"})["id"]
call("PUT", "/api/v1/event-type/st.type", {"description": "schemathesis"})
message = call("POST", f"/api/v1/app/{app}/msg", {"eventType": "st.type", "payload": {"n": 1}})["id"]
task = call("POST", f"/api/v1/app/{app}/endpoint/{endpoint}/recover", {"since": "2020-01-01T00:00:00Z"})["id"]
with open(config, "w") as out:
    out.write("[parameters]\n")
    for name, value in [("app", app), ("ep", endpoint), ("msg", message), ("name", "st.type"), ("id", task)]:
        out.write(f'"path.{name}" = "{value}"\n')
PY
then
    run_schemathesis --config-file "$workdir/schemathesis.toml" -- --exclude-method DELETE || status=$?
else
    echo "could not create the resources of the second pass" >&2
    status=1
fi

if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "webhookd died during the run" >&2
    show_log
    exit 1
fi
if ((status != 0)); then
    show_log
fi
exit "$status"
