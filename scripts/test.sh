#!/usr/bin/env bash
# scripts/test.sh — THE test command:  bash scripts/test.sh [TEST-ARGS...]
#
# Installs missing system packages (scripts/deps.sh build postgis browser api; api is
# schemathesis from PyPI in tests/api/.venv), then inside a
# throwaway PostgreSQL+PostGIS cluster (scripts/with-postgis.sh, which exports
# HAMN_TEST_DATABASE_URL) runs, stopping at the first failure:
#   1. cargo fmt --all -- --check
#   2. cargo clippy --all-targets -- -D warnings
#   3. cargo test --all-targets -- --test-threads=2 [TEST-ARGS...]
# TEST-ARGS go to the test binaries (after --): a name filter, --nocapture, ...
#   e.g. bash scripts/test.sh ingest
set -euo pipefail

# --- the steps; edit here --------------------------------------------------
FMT_CMD=(cargo fmt --all -- --check)
CLIPPY_CMD=(cargo clippy --all-targets -- -D warnings)
TEST_CMD=(cargo test --all-targets -- --test-threads=2)
# ---------------------------------------------------------------------------

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

header() { printf '\n==> %s\n' "$*" >&2; }

if [ -z "${_HAMN_TEST_IN_POSTGIS:-}" ]; then
    header "system dependencies (scripts/deps.sh build postgis browser api)"
    # shellcheck source=scripts/deps.sh
    . "$root/scripts/deps.sh"
    hamn_deps_build
    hamn_deps_postgis
    hamn_deps_browser
    hamn_deps_api

    for tool in fmt clippy; do
        if ! cargo "$tool" --version >/dev/null 2>&1; then
            echo "test.sh: 'cargo $tool' is missing; install it with: rustup component add ${tool/fmt/rustfmt}" >&2
            exit 1
        fi
    done

    header "starting a throwaway PostgreSQL + PostGIS (scripts/with-postgis.sh)"
    export _HAMN_TEST_IN_POSTGIS=1
    # The cluster also takes TLS, so tests/tls.rs can check hamn's sslmode handling.
    export HAMN_TEST_PG_TLS=1
    # And a streaming replica of it, for tests/replica.rs.
    export HAMN_TEST_PG_REPLICA=1
    # And PgBouncer in front of it, for tests/pgbouncer.rs.
    export HAMN_TEST_PGBOUNCER=1
    exec bash "$root/scripts/with-postgis.sh" bash "$root/scripts/test.sh" "$@"
fi

# --- inside with-postgis.sh: HAMN_TEST_DATABASE_URL is set ------------------
unset _HAMN_TEST_IN_POSTGIS
: "${HAMN_TEST_DATABASE_URL:?not set: run this script as: bash scripts/test.sh}"

header "[1/3] ${FMT_CMD[*]}"
"${FMT_CMD[@]}"

header "[2/3] ${CLIPPY_CMD[*]}"
"${CLIPPY_CMD[@]}"

header "[3/3] ${TEST_CMD[*]}${*:+ $*}"
"${TEST_CMD[@]}" "$@"

header "all checks passed"
