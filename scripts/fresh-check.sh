#!/usr/bin/env bash
# scripts/fresh-check.sh — run the README's two commands on a fresh Debian 12 root.
#
#   bash scripts/fresh-check.sh [--rebuild-base] [--keep] [--only base|run|test]
#
# CI runs on a developer's machine, whose image has more than a fresh Debian (a newer Node.js,
# packages installed by hand), so a green CI does not show that a newcomer's first commands
# work. This script does, as root on a Debian/Ubuntu host with network access to a Debian
# mirror:
#   1. builds a minimal Debian 12 (bookworm) root with debootstrap: minbase plus what the README
#      assumes a newcomer has (a C compiler, git, CA certificates) and bookworm's usual apt
#      sources (bookworm, bookworm-updates, bookworm-security). The root is cached under
#      $HAMN_FRESH_DIR/base (default /var/tmp/hamn-fresh) and copied anew for every check;
#   2. copies this working tree in (the files git tracks or would track, as they are now: no
#      target/, no node_modules/);
#   3. bind-mounts the host's Rust toolchain read-only (the README leaves Rust to rustup; rustup
#      cannot download here) with an empty CARGO_HOME, and mounts /proc, /sys and /dev;
#   4. runs `bash scripts/run.sh --bind 127.0.0.1:$PORT` until the landing page answers with the
#      demo collections, then stops it;
#   5. runs `bash scripts/test.sh` (the test command) to the end.
# Exits 0 only if both pass. A log of each step is kept under $HAMN_FRESH_DIR/logs.
# Not run by CI: it takes 20-40 minutes (package installs and a cold build in the root).
#
# Settings (environment): HAMN_FRESH_DIR, HAMN_FRESH_MIRROR (default: http://deb.debian.org/debian),
# HAMN_FRESH_PORT (default 18080), HAMN_FRESH_TOOLCHAIN (default: `rustc --print sysroot`).
set -euo pipefail

prog=fresh-check
msg() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() {
    msg "$*"
    exit 1
}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${HAMN_FRESH_DIR:-/var/tmp/hamn-fresh}
mirror=${HAMN_FRESH_MIRROR:-http://deb.debian.org/debian}
security_mirror=${HAMN_FRESH_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
port=${HAMN_FRESH_PORT:-18080}
rebuild=0
keep=0
only=""
while [ $# -gt 0 ]; do
    case "$1" in
    --rebuild-base) rebuild=1 ;;
    --keep) keep=1 ;;
    --only)
        only=${2:-}
        shift
        ;;
    -h | --help)
        sed -n '2,27p' "${BASH_SOURCE[0]}"
        exit 0
        ;;
    *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done
case "$only" in "" | base | run | test) ;; *) die "--only takes base, run or test" ;; esac

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot and mounts)"
command -v curl >/dev/null || die "needs curl on the host (to ask the server in the root)"
toolchain=${HAMN_FRESH_TOOLCHAIN:-$(rustc --print sysroot 2>/dev/null || true)}
[ -x "$toolchain/bin/cargo" ] && [ -x "$toolchain/bin/cargo-clippy" ] && [ -x "$toolchain/bin/rustfmt" ] ||
    die "no Rust toolchain with cargo, clippy and rustfmt at '$toolchain' (set HAMN_FRESH_TOOLCHAIN)"
if ! command -v debootstrap >/dev/null; then
    msg "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get -q -y install --no-install-recommends debootstrap >/dev/null
fi

base=$dir/base
root=$dir/root
logs=$dir/logs
mkdir -p "$dir" "$logs"

# --- 1. the cached base root ------------------------------------------------
if [ "$rebuild" -eq 1 ] || [ ! -f "$base/.hamn-base-ok" ]; then
    rm -rf "$base"
    msg "debootstrap bookworm into $base (log: $logs/debootstrap.log)"
    debootstrap --variant=minbase --include=ca-certificates,git,gcc,libc6-dev \
        bookworm "$base" "$mirror" >"$logs/debootstrap.log" 2>&1 ||
        die "debootstrap failed; see $logs/debootstrap.log"
    cat >"$base/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security_mirror bookworm-security main
EOF
    touch "$base/.hamn-base-ok"
fi
if [ "$only" = base ]; then
    msg "base root ready at $base"
    exit 0
fi

# --- 2. a fresh copy, with the working tree --------------------------------
kill_in_root() {
    # Processes still running in the root (the server that cargo run started, PostgreSQL).
    local p
    for p in /proc/[0-9]*; do
        if [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ]; then
            kill -9 "${p#/proc/}" 2>/dev/null || true
        fi
    done
    sleep 1
}
unmount_all() {
    kill_in_root
    local m
    for m in opt/rust dev/pts dev sys proc; do
        if mountpoint -q "$root/$m" 2>/dev/null; then
            umount -R "$root/$m" 2>/dev/null || umount -lR "$root/$m" || true
        fi
    done
}
cleanup() {
    unmount_all
    if [ "$keep" -eq 0 ]; then
        rm -rf --one-file-system "$root"
    else
        msg "kept the root at $root"
    fi
}
if [ -d "$root" ]; then
    unmount_all
    rm -rf --one-file-system "$root"
fi
msg "copying the base root to $root"
cp -a "$base" "$root"
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$root/src/hamn"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
    tar --null -T - -cf -) | tar -C "$root/src/hamn" -xf -
# The README's first step is a clone: git metadata as a clone has it.
(cd "$root/src/hamn" && git init -q && git add -A && git -c user.name=fresh -c user.email=fresh@localhost commit -qm fresh)
cp /etc/resolv.conf "$root/etc/resolv.conf"
# Where the host reaches the registries through a TLS-inspecting proxy (as the development
# machines do), the root must trust the same authorities: the host's CA bundle is added to the
# root's, and Node.js is pointed at it as on the host. Nothing else of the host's setup is copied.
extra_env=()
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    cp /etc/ssl/certs/ca-certificates.crt "$root/usr/local/share/ca-certificates/host-bundle.crt"
    chroot "$root" update-ca-certificates >/dev/null 2>&1 || msg "update-ca-certificates failed in the root"
fi
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ]; then
    extra_env+=(NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt)
fi

mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys" && mount --make-rslave "$root/sys"
mount --rbind /dev "$root/dev" && mount --make-rslave "$root/dev"
mkdir -p "$root/opt/rust"
mount --bind "$toolchain" "$root/opt/rust"
mount -o remount,bind,ro "$root/opt/rust"

in_root() {
    chroot "$root" /usr/bin/env -i \
        HOME=/root USER=root LANG=C.UTF-8 TERM=dumb \
        PATH=/opt/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        CARGO_HOME=/root/.cargo "${extra_env[@]}" \
        bash -c "cd /src/hamn && $1"
}

msg "the root: $(chroot "$root" cat /etc/debian_version), $(in_root 'cargo --version'), node: $(in_root 'command -v node || echo none')"
status=0

# --- 4. the run command -------------------------------------------------------
if [ -z "$only" ] || [ "$only" = run ]; then
    msg "[run] bash scripts/run.sh --bind 127.0.0.1:$port (log: $logs/run.log)"
    in_root "exec bash scripts/run.sh --bind 127.0.0.1:$port" >"$logs/run.log" 2>&1 &
    run_pid=$!
    started=$(date +%s)
    served=""
    while kill -0 "$run_pid" 2>/dev/null; do
        if served=$(curl -sf "http://127.0.0.1:$port/collections?f=json" 2>/dev/null) && [ -n "$served" ]; then
            break
        fi
        served=""
        [ $(($(date +%s) - started)) -lt 3600 ] || break
        sleep 5
    done
    if [ -n "$served" ] && n=$(printf '%s' "$served" | grep -o '"id":"[^"]*"' | wc -l) && [ "$n" -gt 0 ]; then
        msg "[run] PASS: served $n collection ids after $(($(date +%s) - started)) s"
    else
        msg "[run] FAIL: nothing served; last lines of $logs/run.log:"
        tail -n 30 "$logs/run.log" >&2
        status=1
    fi
    kill "$run_pid" 2>/dev/null || true
    wait "$run_pid" 2>/dev/null || true
    kill_in_root
fi

# --- 5. the test command ------------------------------------------------------
if [ -z "$only" ] || [ "$only" = test ]; then
    msg "[test] bash scripts/test.sh (log: $logs/test.log)"
    started=$(date +%s)
    if in_root "bash scripts/test.sh" >"$logs/test.log" 2>&1; then
        msg "[test] PASS after $(($(date +%s) - started)) s; its closing lines:"
    else
        msg "[test] FAIL after $(($(date +%s) - started)) s; its closing lines:"
        status=1
    fi
    grep -E '^test result:|^==> ' "$logs/test.log" | tail -n 40 >&2 || true
    tail -n 5 "$logs/test.log" >&2
fi

if [ "$status" -eq 0 ]; then
    msg "PASS: both README commands work on a fresh Debian $(cat "$root/etc/debian_version")"
else
    msg "FAIL"
fi
exit "$status"
