#!/usr/bin/env bash
# scripts/deps.sh — install the system packages hamn needs (Debian/Ubuntu, apt).
#
# Run it:
#   bash scripts/deps.sh [build] [postgis] [browser] [api] [all]   (default: build postgis)
# or source it (bash) and call the functions:
#   . scripts/deps.sh && hamn_deps_build && hamn_deps_postgis
#
# Groups:
#   build    pkg-config clang libclang-dev libgdal-dev gdal-bin (+ build-essential
#            if there is no `cc`, libssl-dev if Cargo.lock uses openssl-sys), and
#            checks that `cargo` exists (prints how to get rustup if not).
#   postgis  a PostgreSQL server with PostGIS 3 (Debian 12: postgresql-15-postgis-3), and
#            PgBouncer (tests/pgbouncer.rs puts it in front of the test cluster).
#   browser  chromium, nodejs and npm, and tests/browser's playwright-core (browser tests).
#   api      python3 and python3-venv, and a venv in tests/api/.venv with the pinned
#            schemathesis of tests/api/requirements.txt, from PyPI (tests/schemathesis.rs).
#
# Idempotent and quiet: everything is checked first; `apt-get update` runs at most
# once per process and only when something must be installed; apt output is shown
# only when it fails. Uses sudo when not root. Returns/exits non-zero with a message
# when it cannot install what is missing (no apt-get, not root and no sudo, ...).
#
# Safe to source from scripts using `set -euo pipefail`; it sets no shell options
# itself when sourced.

_HAMN_DEPS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

_hamn_deps_msg() { printf 'deps: %s\n' "$*" >&2; }

# True when the Debian package is installed (not merely known / config-files).
_hamn_deps_pkg_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed$'
}

_hamn_deps_have() { command -v "$1" >/dev/null 2>&1; }

# Run a command as root (directly, or via sudo).
_hamn_deps_as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    else
        sudo "$@"
    fi
}

# Can we run apt-get as root at all? Prints why not.
_hamn_deps_can_apt() {
    if ! _hamn_deps_have apt-get; then
        _hamn_deps_msg "apt-get not found: this script only knows Debian/Ubuntu."
        return 1
    fi
    if [ "$(id -u)" -ne 0 ] && ! _hamn_deps_have sudo; then
        _hamn_deps_msg "not root and sudo is not available: cannot install packages."
        return 1
    fi
    return 0
}

# apt-get quietly; its output is printed only if it fails.
_hamn_deps_apt() {
    local log rc=0
    log=$(mktemp "${TMPDIR:-/tmp}/hamn-deps-apt.XXXXXX")
    _hamn_deps_as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get -q -y -o Dpkg::Use-Pty=0 "$@" >"$log" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        _hamn_deps_msg "'apt-get $*' failed (exit $rc); last lines of its output:"
        tail -n 40 "$log" >&2
    fi
    rm -f "$log"
    return "$rc"
}

_hamn_deps_apt_update_once() {
    if [ -n "${_HAMN_DEPS_APT_UPDATED:-}" ]; then
        return 0
    fi
    _hamn_deps_msg "running apt-get update"
    _hamn_deps_apt update || return 1
    _HAMN_DEPS_APT_UPDATED=1
}

# Install packages (after the checks decided they are missing).
_hamn_deps_install() {
    if ! _hamn_deps_can_apt; then
        _hamn_deps_msg "please install these packages yourself: $*"
        return 1
    fi
    _hamn_deps_apt_update_once || return 1
    _hamn_deps_msg "installing: $*"
    _hamn_deps_apt install --no-install-recommends "$@" || return 1
}

# Does apt have an installable candidate for this package? (needs apt lists)
_hamn_deps_apt_offers() {
    local cand
    cand=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2; exit }')
    [ -n "$cand" ] && [ "$cand" != "(none)" ]
}

# ---------------------------------------------------------------------------
# build: what `cargo build` needs (gdal-sys uses pkg-config + bindgen/libclang).
# ---------------------------------------------------------------------------
hamn_deps_build() {
    local missing=() pkg
    if _hamn_deps_have dpkg-query; then
        for pkg in pkg-config clang libclang-dev libgdal-dev gdal-bin; do
            if _hamn_deps_pkg_installed "$pkg"; then
                continue
            fi
            # A GDAL/clang built from source also counts.
            case "$pkg" in
            libgdal-dev) _hamn_deps_have gdal-config && continue ;;
            gdal-bin) _hamn_deps_have gdalinfo && continue ;;
            clang) _hamn_deps_have clang && continue ;;
            pkg-config) _hamn_deps_have pkg-config && continue ;;
            esac
            missing+=("$pkg")
        done
        # A linker/C compiler for rustc and the cc crate.
        if ! _hamn_deps_have cc; then
            missing+=(build-essential)
        fi
        # Only if the project ends up depending on openssl-sys.
        if [ -f "$_HAMN_DEPS_ROOT/Cargo.lock" ] &&
            grep -q '^name = "openssl-sys"$' "$_HAMN_DEPS_ROOT/Cargo.lock" &&
            ! _hamn_deps_pkg_installed libssl-dev; then
            missing+=(libssl-dev)
        fi
    else
        # No dpkg: check by command only, and we will not be able to install.
        _hamn_deps_have pkg-config || missing+=(pkg-config)
        _hamn_deps_have clang || missing+=(clang libclang-dev)
        _hamn_deps_have gdal-config || missing+=(libgdal-dev)
        _hamn_deps_have gdalinfo || missing+=(gdal-bin)
        _hamn_deps_have cc || missing+=(build-essential)
    fi

    if [ "${#missing[@]}" -gt 0 ]; then
        _hamn_deps_install "${missing[@]}" || return 1
    fi

    if ! _hamn_deps_have cargo; then
        if [ -x "${HOME:-}/.cargo/bin/cargo" ]; then
            export PATH="$HOME/.cargo/bin:$PATH"
        else
            _hamn_deps_msg "cargo not found. Install the Rust toolchain with rustup, then open a new shell:"
            _hamn_deps_msg "  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y"
            _hamn_deps_msg "  (see https://rustup.rs; the components rustfmt and clippy are needed for tests)"
            return 1
        fi
    fi
    _hamn_deps_msg "build: ok (gdal $(gdal-config --version 2>/dev/null || echo '?'), $(cargo --version 2>/dev/null || echo 'cargo ?'))"
}

# ---------------------------------------------------------------------------
# postgis: a PostgreSQL server with PostGIS 3, for scripts/with-postgis.sh.
# ---------------------------------------------------------------------------

# Installed server versions (those with an initdb), oldest first.
hamn_pg_versions() {
    local d v
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/initdb" ] || continue
        v=${d#/usr/lib/postgresql/}
        printf '%s\n' "${v%/bin}"
    done | sort -V
}

# Newest installed server version that has the PostGIS extension; fails if none.
hamn_pg_postgis_version() {
    local v best=""
    for v in $(hamn_pg_versions); do
        if [ -f "/usr/share/postgresql/$v/extension/postgis.control" ]; then
            best=$v
        fi
    done
    [ -n "$best" ] || return 1
    printf '%s\n' "$best"
}

# PgBouncer, which the tests run in front of the throwaway cluster (Debian 12: 1.18). Debian's
# package also enables a system pgbouncer on 127.0.0.1:6432; the tests start their own.
_hamn_deps_pgbouncer() {
    { _hamn_deps_have pgbouncer || [ -x /usr/sbin/pgbouncer ]; } && return 0
    _hamn_deps_can_apt || {
        _hamn_deps_msg "please install PgBouncer (Debian: apt-get install pgbouncer)"
        return 1
    }
    _hamn_deps_apt_update_once || return 1
    _hamn_deps_install pgbouncer || return 1
}

hamn_deps_postgis() {
    local v newest pkg=""
    if v=$(hamn_pg_postgis_version); then
        _hamn_deps_pgbouncer || return 1
        _hamn_deps_msg "postgis: ok (PostgreSQL $v with PostGIS)"
        return 0
    fi
    newest=$(hamn_pg_versions | tail -n 1)

    _hamn_deps_can_apt || {
        _hamn_deps_msg "please install a PostgreSQL server with PostGIS 3 (Debian 12: postgresql-15-postgis-3)"
        return 1
    }
    # apt-cache needs fresh lists (a fresh container has none).
    _hamn_deps_apt_update_once || return 1
    if [ -n "$newest" ] && _hamn_deps_apt_offers "postgresql-$newest-postgis-3"; then
        pkg="postgresql-$newest-postgis-3"   # matches the installed server
    elif _hamn_deps_apt_offers postgresql-postgis; then
        pkg=postgresql-postgis              # the distribution's default version
    else
        pkg=$(apt-cache search --names-only '^postgresql-[0-9]+-postgis-3$' 2>/dev/null |
            awk '{ print $1 }' | sort -V | tail -n 1) || true
    fi
    if [ -z "$pkg" ]; then
        _hamn_deps_msg "apt offers no PostGIS 3 package (postgresql-<version>-postgis-3 / postgresql-postgis)."
        return 1
    fi
    _hamn_deps_install "$pkg" || return 1
    if ! v=$(hamn_pg_postgis_version); then
        _hamn_deps_msg "installed $pkg but found no /usr/lib/postgresql/<v>/bin with /usr/share/postgresql/<v>/extension/postgis.control"
        return 1
    fi
    _hamn_deps_pgbouncer || return 1
    _hamn_deps_msg "postgis: ok (PostgreSQL $v with PostGIS)"
}

# ---------------------------------------------------------------------------
# browser: chromium, Node.js and playwright-core (tests/tiles.rs drives the map pages).
# ---------------------------------------------------------------------------
hamn_deps_browser() {
    local b have_browser=""
    for b in chromium chromium-browser google-chrome google-chrome-stable; do
        if _hamn_deps_have "$b"; then
            have_browser=$b
            break
        fi
    done
    if [ -z "$have_browser" ] || ! _hamn_deps_have node || ! _hamn_deps_have npm; then
        _hamn_deps_can_apt || {
            _hamn_deps_msg "please install chromium, nodejs and npm"
            return 1
        }
        _hamn_deps_apt_update_once || return 1
        if [ -z "$have_browser" ]; then
            if ! _hamn_deps_apt_offers chromium; then
                # Ubuntu only has a snap wrapper (chromium-browser), unusable in containers.
                _hamn_deps_msg "apt offers no 'chromium' package here; install Chromium or Chrome yourself."
                return 1
            fi
            _hamn_deps_install chromium fonts-liberation || return 1
        fi
        if ! _hamn_deps_have node || ! _hamn_deps_have npm; then
            _hamn_deps_install nodejs npm || return 1
        fi
    fi
    # playwright-core drives the installed Chromium (it downloads no browser of its own). It is
    # pinned to a release that runs on the Node.js Debian 12 ships (18); older Node is refused.
    local node_major
    node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
    if [ "$node_major" -lt 18 ]; then
        _hamn_deps_msg "node $(node --version 2>/dev/null) is too old: the browser tests need Node.js 18 or later"
        return 1
    fi
    local dir
    dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/browser"
    # Reinstall whenever the lock file changed since the last install.
    if ! cmp -s "$dir/package-lock.json" "$dir/node_modules/.hamn-installed-lock.json"; then
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null &&
            cp package-lock.json node_modules/.hamn-installed-lock.json) || {
            _hamn_deps_msg "npm ci in tests/browser failed"
            return 1
        }
    fi
    _hamn_deps_msg "browser: ok (${have_browser:-chromium}, node $(node --version 2>/dev/null))"
}

# ---------------------------------------------------------------------------
# api: schemathesis (from PyPI) in a venv, for tests/schemathesis.rs.
# ---------------------------------------------------------------------------
hamn_deps_api() {
    local dir="$_HAMN_DEPS_ROOT/tests/api" py missing=()
    local venv="$dir/.venv" req="$dir/requirements.txt"
    local stamp="$dir/.venv/.hamn-installed-requirements.txt"
    # Debian's python3 (3.11 on Debian 12) and its venv module, which Debian packages apart.
    if _hamn_deps_have dpkg-query; then
        _hamn_deps_pkg_installed python3 || missing+=(python3)
        _hamn_deps_pkg_installed python3-venv || missing+=(python3-venv)
    fi
    if [ "${#missing[@]}" -gt 0 ]; then
        _hamn_deps_install "${missing[@]}" || return 1
    fi
    # The system's interpreter when there is one (what a fresh machine has), whatever is
    # first on PATH.
    if [ -x /usr/bin/python3 ]; then
        py=/usr/bin/python3
    elif _hamn_deps_have python3; then
        py=$(command -v python3)
    else
        _hamn_deps_msg "python3 not found: install Python 3.11 or later with its venv module"
        return 1
    fi
    if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        _hamn_deps_msg "$py is Python $("$py" -c 'import platform; print(platform.python_version())'); schemathesis needs 3.11 or later"
        return 1
    fi
    # A new venv whenever the requirements changed since the last install, or the venv does
    # not run (made by another interpreter, which has gone), so nothing stale stays in it.
    if ! cmp -s "$req" "$stamp" || ! "$venv/bin/python" -c '' >/dev/null 2>&1; then
        _hamn_deps_msg "installing tests/api/requirements.txt into tests/api/.venv (pip, PyPI)"
        rm -rf "$venv"
        local log rc=0
        log=$(mktemp "${TMPDIR:-/tmp}/hamn-deps-pip.XXXXXX")
        {
            "$py" -m venv "$venv" &&
                "$venv/bin/python" -m pip install --disable-pip-version-check --no-input \
                    --require-hashes --no-deps --only-binary :all: -r "$req" &&
                "$venv/bin/python" -m pip check
        } >"$log" 2>&1 || rc=$?
        if [ "$rc" -ne 0 ]; then
            _hamn_deps_msg "installing schemathesis failed (exit $rc); last lines:"
            tail -n 40 "$log" >&2
            rm -f "$log"
            rm -rf "$venv"
            return 1
        fi
        rm -f "$log"
        cp "$req" "$stamp"
    fi
    if ! "$venv/bin/st" --version >/dev/null 2>&1; then
        _hamn_deps_msg "tests/api/.venv/bin/st does not run; remove tests/api/.venv and try again"
        return 1
    fi
    _hamn_deps_msg "api: ok ($("$venv/bin/st" --version 2>/dev/null), $("$venv/bin/python" --version 2>&1))"
}

_hamn_deps_usage() {
    cat >&2 <<'EOF'
usage: bash scripts/deps.sh [build] [postgis] [browser] [api] [all]
       (no argument = build postgis; --build style flags also work)
EOF
}

_hamn_deps_main() {
    local groups=("$@") g
    if [ "${#groups[@]}" -eq 0 ]; then
        groups=(build postgis)
    fi
    for g in "${groups[@]}"; do
        case "${g#--}" in
        build) hamn_deps_build || return 1 ;;
        postgis) hamn_deps_postgis || return 1 ;;
        browser) hamn_deps_browser || return 1 ;;
        api) hamn_deps_api || return 1 ;;
        all) hamn_deps_build && hamn_deps_postgis && hamn_deps_browser && hamn_deps_api || return 1 ;;
        help | -h)
            _hamn_deps_usage
            return 0
            ;;
        *)
            _hamn_deps_msg "unknown group: $g"
            _hamn_deps_usage
            return 2
            ;;
        esac
    done
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    _hamn_deps_main "$@"
fi
