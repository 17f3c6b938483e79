#!/usr/bin/env bash
# scripts/run.sh — THE run command:  bash scripts/run.sh [SERVE-ARGS...]
#
# Installs missing build dependencies (scripts/deps.sh build), then builds and
# starts the server: cargo run --release -- serve [SERVE-ARGS...]
# By default it uses an embedded store in ./hamn-data, loads the demo data from data/ into it
# when it is empty, and listens on 127.0.0.1:8080; no database is needed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

# shellcheck source=scripts/deps.sh
. "$root/scripts/deps.sh"
hamn_deps_build

# The demo data is asked for here; `hamn serve` alone never loads it.
exec cargo run --release -- serve --demo-data "$root/data" "$@"
