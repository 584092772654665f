#!/usr/bin/env bash
# The one test command (README, .ci/run): installs the real peers the tests talk to when
# they are missing, starts a throwaway PostgreSQL cluster for the PostgreSQL store's
# tests (unless MAILGATE_TEST_PG_URL already names a server), then runs every test:
# once on the sled backend, and the integration tests again on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-peers.sh

if [ -z "${MAILGATE_TEST_PG_URL:-}" ]; then
  PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
    echo "test.sh: PostgreSQL is missing: run bash scripts/install-test-peers.sh (apt-get install postgresql)" >&2
    exit 1
  fi
  PG_DIR="$(mktemp -d /tmp/mailgate-pg.XXXXXX)"
  # initdb refuses to run as root: the cluster belongs to the postgres user then.
  AS_PG=()
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$PG_DIR"
    AS_PG=(runuser -u postgres --)
  fi
  stop_pg() {
    "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
  }
  trap stop_pg EXIT
  PG_PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  if ! "${AS_PG[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust -E UTF8 --no-sync \
      >"$PG_DIR/initdb.log" 2>&1; then
    cat "$PG_DIR/initdb.log" >&2
    exit 1
  fi
  # Loopback logins are trusted, except mailgate_pw's: it proves a wrong password is named.
  hba="$PG_DIR/data/pg_hba.conf"
  { echo "host all mailgate_pw 127.0.0.1/32 scram-sha-256"; cat "$hba"; } >"$hba.new"
  "${AS_PG[@]}" cp "$hba.new" "$hba"
  # Throwaway data: no fsync; room for the parallel tests' pools.
  if ! "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -o \
      "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR -c fsync=off -c max_connections=400" \
      start >/dev/null; then
    cat "$PG_DIR/server.log" >&2
    exit 1
  fi
  "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
    -c "CREATE ROLE mailgate LOGIN CREATEDB" \
    -c "CREATE DATABASE mailgate OWNER mailgate" \
    -c "CREATE ROLE mailgate_pw LOGIN PASSWORD 'the-right-password'"
  export MAILGATE_TEST_PG_URL="postgres://mailgate@127.0.0.1:$PG_PORT/mailgate"
  echo "test.sh: throwaway PostgreSQL at $MAILGATE_TEST_PG_URL ($PG_DIR)"
fi

cargo test "$@"
# The whole command also runs the integration tests a second time with every instance
# on a PostgreSQL database of its own (the backend switch in tests/it/support.rs).
if [ "$#" -eq 0 ]; then
  echo "test.sh: the integration tests again, on the PostgreSQL backend"
  MAILGATE_TEST_BACKEND=postgres cargo test --test it
fi
