#!/usr/bin/env bash
# scripts/docker-check.sh — build the Docker image and run it, on its embedded store and in the
# compose stack with PostGIS, without Docker Hub.
#
#   bash scripts/docker-check.sh [--prepare] [--rebuild-base] [--remove-images]
#
# As root on a Debian 12 host that reaches a Debian mirror (and nothing else is needed from the
# network): no base image is pulled, every one is made here.
#   1. installs docker.io, docker-compose (v1; `docker compose` is used where it exists),
#      debootstrap and curl when missing, and starts dockerd when none answers (stopped again
#      at the end; its log is in $HAMN_DOCKER_DIR/dockerd.log);
#   2. hamn-base/bookworm: a debootstrap minbase bookworm root (with bookworm-updates and
#      bookworm-security applied, documentation and locales left out as in debian:*-slim),
#      made an image with `docker import`. Made once, reused until --rebuild-base;
#   3. hamn-rust/bookworm:<rustc version>-<Cargo.lock hash>: the base with gcc, the host's Rust
#      toolchain (`rustc --print sysroot`) and `cargo vendor`'s crates (docker/rust/Dockerfile),
#      the BUILDER_IMAGE in place of rust:1-bookworm: nothing is downloaded at build time
#      except Debian packages;
#   4. hamn-postgis/bookworm: PostgreSQL 15 + PostGIS 3 from Debian on the base
#      (docker/postgis/), in place of postgis/postgis:15-3.4;
#   5. the hamn image from ./Dockerfile (BuildKit) with these as BUILDER_IMAGE and BASE_IMAGE,
#      timed. `--prepare` stops before this step (it compiles hamn: 10-15 minutes on 2 cores);
#   6. `hamn serve --demo-data /usr/share/hamn/data` in it on the embedded store: /ready must
#      answer 200 with the demo collections, and one items request must return a feature;
#   7. docker-compose.yml (project hamn-docker-check, the images above): /ready and
#      /collections from hamn on PostGIS;
#   8. removes the containers, networks and volumes it made, dangling images and the build
#      contexts BuildKit keeps (not the cargo cache mount, which makes the next build
#      incremental), and prints `docker system df`. The images stay for the next run unless
#      --remove-images (which removes them and all build cache).
# Each wait is bounded; the first failure stops the script with what went wrong (and the
# container's last log lines). Logs of the builds: $HAMN_DOCKER_DIR/logs. Not run by CI.
#
# Settings (environment): HAMN_DOCKER_DIR (default /var/tmp/hamn-docker), HAMN_DOCKER_MIRROR
# and HAMN_DOCKER_SECURITY_MIRROR (default: the host's apt sources), HAMN_DOCKER_TOOLCHAIN
# (default `rustc --print sysroot`), HAMN_DOCKER_PORT (default 18081: the embedded check;
# the compose stack gets the next port), HAMN_DOCKER_WAIT (seconds per wait, default 180).
set -euo pipefail

prog="docker-check"
msg() { printf '%s: %s\n' "$prog" "$*"; }
die() {
    printf '%s: FAIL: %s\n' "$prog" "$*" >&2
    exit 1
}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${HAMN_DOCKER_DIR:-/var/tmp/hamn-docker}
port=${HAMN_DOCKER_PORT:-18081}
compose_port=$((port + 1))
wait_max=${HAMN_DOCKER_WAIT:-180}
prepare=0
rebuild_base=0
remove_images=0
while [ $# -gt 0 ]; do
    case "$1" in
    --prepare) prepare=1 ;;
    --rebuild-base) rebuild_base=1 ;;
    --remove-images) remove_images=1 ;;
    -h | --help)
        sed -n '2,37p' "${BASH_SOURCE[0]}"
        exit 0
        ;;
    *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done
[ "$(id -u)" -eq 0 ] || die "needs root (apt-get, dockerd, debootstrap)"
logs=$dir/logs
mkdir -p "$dir" "$logs"

# --- 1. tools and the daemon ---------------------------------------------------
need=()
[ -x /usr/sbin/dockerd ] || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
    msg "apt-get install ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get -q -y install --no-install-recommends "${need[@]}" >"$logs/apt.log" 2>&1 ||
        die "apt-get install ${need[*]} failed; see $logs/apt.log"
fi
# Debian's client, which has BuildKit built in (a newer static client elsewhere on PATH may
# want the buildx plugin for BuildKit).
docker=docker
[ -x /usr/bin/docker ] && docker=/usr/bin/docker
export DOCKER_BUILDKIT=1
if "$docker" compose version >/dev/null 2>&1; then
    compose=("$docker" compose)
else
    if ! command -v docker-compose >/dev/null; then
        msg "apt-get install docker-compose"
        DEBIAN_FRONTEND=noninteractive apt-get -q -y install --no-install-recommends docker-compose >>"$logs/apt.log" 2>&1 ||
            die "apt-get install docker-compose failed; see $logs/apt.log"
    fi
    compose=(docker-compose)
fi
dockerd_pid=""
stop_dockerd() {
    if [ -n "$dockerd_pid" ]; then
        msg "stopping the dockerd this script started (pid $dockerd_pid)"
        kill "$dockerd_pid" 2>/dev/null || true
        for _ in $(seq 1 30); do
            kill -0 "$dockerd_pid" 2>/dev/null || break
            sleep 1
        done
        dockerd_pid=""
    fi
}
if ! "$docker" info >/dev/null 2>&1; then
    msg "starting dockerd (log: $dir/dockerd.log)"
    setsid /usr/sbin/dockerd >"$dir/dockerd.log" 2>&1 &
    dockerd_pid=$!
    for _ in $(seq 1 30); do
        "$docker" info >/dev/null 2>&1 && break
        kill -0 "$dockerd_pid" 2>/dev/null || die "dockerd exited; see $dir/dockerd.log"
        sleep 1
    done
    "$docker" info >/dev/null 2>&1 || die "dockerd did not answer within 30 s; see $dir/dockerd.log"
fi
msg "docker: $("$docker" version --format 'client {{.Client.Version}}, server {{.Server.Version}}'), compose: ${compose[*]} ($("${compose[@]}" version --short 2>/dev/null || echo '?'))"

project="hamn-docker-check"
embedded="hamn-docker-check-embedded"
compose_env=()
cleanup() {
    local rc=$?
    "$docker" rm -f -v "$embedded" >/dev/null 2>&1 || true
    if [ ${#compose_env[@]} -gt 0 ]; then
        env "${compose_env[@]}" "${compose[@]}" -p "$project" -f "$repo/docker-compose.yml" \
            down -v --remove-orphans >>"$logs/compose.log" 2>&1 || true
    fi
    stop_dockerd
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

image_exists() { "$docker" image inspect "$1" >/dev/null 2>&1; }
elapsed() { echo $(($(date +%s) - $1)); }

# --- 2. the base image ------------------------------------------------------------
# The host's mirror (deb822 URIs: or one-line deb entries).
apt_uris=$({
    cat /etc/apt/sources.list.d/*.sources 2>/dev/null | sed -n 's/^URIs:[[:space:]]*//p'
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
        sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]*\).*/\2/p'
} || true)
mirror=${HAMN_DOCKER_MIRROR:-$(printf '%s\n' "$apt_uris" | grep -m1 '/debian/\?$' || echo http://deb.debian.org/debian)}
mirror=${mirror%/}
security_mirror=${HAMN_DOCKER_SECURITY_MIRROR:-$(printf '%s\n' "$apt_uris" | grep -m1 '/debian-security/\?$' || echo "$mirror-security")}
security_mirror=${security_mirror%/}
base="hamn-base/bookworm:latest"
if [ "$rebuild_base" -eq 1 ] || ! image_exists "$base"; then
    root=$dir/rootfs
    rm -rf --one-file-system "$root"
    started=$(date +%s)
    msg "[base] debootstrap --variant=minbase bookworm from $mirror (log: $logs/debootstrap.log)"
    debootstrap --variant=minbase bookworm "$root" "$mirror" >"$logs/debootstrap.log" 2>&1 ||
        die "debootstrap failed; see $logs/debootstrap.log"
    cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security_mirror bookworm-security main
EOF
    # As debian:*-slim: no documentation, manual pages or translations, no apt caches.
    cat >"$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
    cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    echo 'Acquire::GzipIndexes "true";' >"$root/etc/apt/apt.conf.d/docker-gzip-indexes"
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    msg "[base] apt-get upgrade (bookworm-updates, bookworm-security)"
    chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
        sh -c 'apt-get -q update && apt-get -q -y upgrade && apt-get clean' >>"$logs/debootstrap.log" 2>&1 ||
        die "apt-get upgrade in the root failed; see $logs/debootstrap.log"
    find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
    rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* \
        "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/log/*.log \
        "$root/etc/resolv.conf" "$root/etc/hostname"
    tag=hamn-base/bookworm:$(date -u +%Y%m%d)
    msg "[base] docker import -> $tag, $base"
    tar -C "$root" --numeric-owner -cf - . |
        "$docker" import --change 'CMD ["bash"]' \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            - "$tag" >/dev/null || die "docker import failed"
    "$docker" tag "$tag" "$base"
    rm -rf --one-file-system "$root"
    msg "[base] done in $(elapsed "$started") s"
else
    msg "[base] reusing $base (made $("$docker" image inspect -f '{{.Created}}' "$base" | cut -c1-19); --rebuild-base makes it anew)"
fi

# --- 3. the Rust builder image -----------------------------------------------------
toolchain=${HAMN_DOCKER_TOOLCHAIN:-$(rustc --print sysroot 2>/dev/null || true)}
if [ ! -x "$toolchain/bin/cargo" ] || [ ! -x "$toolchain/bin/rustc" ]; then
    die "no Rust toolchain with cargo and rustc at '$toolchain' (set HAMN_DOCKER_TOOLCHAIN)"
fi
rust_version=$("$toolchain/bin/rustc" --version | cut -d' ' -f2)
lock_hash=$(sha256sum "$repo/Cargo.lock" "$repo/docker/rust/Dockerfile" | sha256sum | cut -c1-12)
builder=hamn-rust/bookworm:$rust_version-$lock_hash
if [ "$rebuild_base" -eq 1 ] || ! image_exists "$builder"; then
    started=$(date +%s)
    ctx=$dir/rust-ctx
    rm -rf --one-file-system "$ctx"
    mkdir -p "$ctx/toolchain"
    msg "[rust] toolchain $rust_version from $toolchain (bin, lib, libexec; no docs)"
    for d in bin lib libexec; do
        [ -d "$toolchain/$d" ] || continue
        # Hard links where the toolchain is on the same file system: no copy of 600 MB.
        cp -al "$toolchain/$d" "$ctx/toolchain/" 2>/dev/null || cp -a "$toolchain/$d" "$ctx/toolchain/"
    done
    msg "[rust] cargo vendor (Cargo.lock's crates, offline from the host's cargo cache when it has them)"
    (cd "$repo" && { cargo vendor --locked --offline --versioned-dirs "$ctx/vendor" 2>"$logs/vendor.log" ||
        cargo vendor --locked --versioned-dirs "$ctx/vendor" 2>>"$logs/vendor.log"; }) >"$ctx/vendor.toml" ||
        die "cargo vendor failed; see $logs/vendor.log"
    {
        sed "s|^directory = .*|directory = \"/usr/local/cargo/vendor\"|" "$ctx/vendor.toml"
        printf '\n[net]\noffline = true\n'
    } >"$ctx/cargo-config.toml"
    cp "$repo/docker/rust/Dockerfile" "$ctx/Dockerfile"
    msg "[rust] docker build -> $builder (log: $logs/rust.log)"
    "$docker" build --progress=plain --build-arg "BASE_IMAGE=$base" -t "$builder" "$ctx" >"$logs/rust.log" 2>&1 ||
        {
            tail -n 30 "$logs/rust.log"
            die "the Rust builder image did not build; see $logs/rust.log"
        }
    rm -rf --one-file-system "$ctx"
    msg "[rust] done in $(elapsed "$started") s"
else
    msg "[rust] reusing $builder"
fi

# --- 4. the PostGIS image --------------------------------------------------------------
postgis_hash=$(cat "$repo/docker/postgis/Dockerfile" "$repo/docker/postgis/entrypoint.sh" | sha256sum | cut -c1-12)
postgis=hamn-postgis/bookworm:15-3-$postgis_hash
if [ "$rebuild_base" -eq 1 ] || ! image_exists "$postgis"; then
    started=$(date +%s)
    msg "[postgis] docker build docker/postgis -> $postgis (log: $logs/postgis.log)"
    "$docker" build --progress=plain --build-arg "BASE_IMAGE=$base" -t "$postgis" "$repo/docker/postgis" >"$logs/postgis.log" 2>&1 ||
        {
            tail -n 30 "$logs/postgis.log"
            die "the PostGIS image did not build; see $logs/postgis.log"
        }
    msg "[postgis] done in $(elapsed "$started") s"
else
    msg "[postgis] reusing $postgis"
fi
if [ "$prepare" -eq 1 ]; then
    msg "--prepare: images ready ($base, $builder, $postgis); hamn not built"
    exit 0
fi

# --- 5. the hamn image ----------------------------------------------------------------
hamn=hamn:docker-check
started=$(date +%s)
msg "[hamn] docker build . (BUILDER_IMAGE=$builder, BASE_IMAGE=$base) -> $hamn (log: $logs/hamn.log)"
"$docker" build --progress=plain --build-arg "BUILDER_IMAGE=$builder" --build-arg "BASE_IMAGE=$base" \
    -t "$hamn" "$repo" >"$logs/hamn.log" 2>&1 ||
    {
        tail -n 40 "$logs/hamn.log"
        die "the hamn image did not build; see $logs/hamn.log"
    }
build_seconds=$(elapsed "$started")
cargo_line=$(grep -o "Finished .release. profile.*" "$logs/hamn.log" | tail -n1 || true)
msg "[hamn] built in $build_seconds s${cargo_line:+ (cargo: $cargo_line)}"

# --- helpers for the checks ----------------------------------------------------------
# wait_ready URL WHAT LOGS-COMMAND...: until GET URL/ready answers 200 "ready" with collections.
wait_ready() {
    local url=$1 what=$2 started body=""
    shift 2
    started=$(date +%s)
    while [ "$(elapsed "$started")" -lt "$wait_max" ]; do
        if body=$(curl -sf --max-time 5 "$url/ready" 2>/dev/null) &&
            printf '%s' "$body" | grep -q '"status":"ready"' &&
            ! printf '%s' "$body" | grep -q '"collections":0[,}]'; then
            msg "[$what] /ready after $(elapsed "$started") s: $body"
            return 0
        fi
        if ! "$@" >/dev/null 2>&1; then
            break
        fi
        sleep 2
    done
    msg "[$what] last /ready answer: ${body:-none}"
    return 1
}
# check_items URL WHAT: the first collection's first item.
check_items() {
    local url=$1 what=$2 collections id items
    collections=$(curl -sf --max-time 30 -H 'Accept: application/json' "$url/collections?f=json") ||
        die "[$what] GET /collections failed"
    id=$(printf '%s' "$collections" | grep -o '"collections":\[{[^{]*"id":"[^"]*"' | sed 's/.*"id":"//; s/"$//' | head -n1)
    [ -n "$id" ] || id=$(printf '%s' "$collections" | grep -o '"id":"[^"]*"' | head -n1 | sed 's/"id":"//; s/"$//')
    [ -n "$id" ] || die "[$what] no collection in /collections: $(printf '%s' "$collections" | head -c 300)"
    msg "[$what] /collections: $(printf '%s' "$collections" | grep -o '"id":"[^"]*"' | sort -u | wc -l) ids, first $id"
    items=$(curl -sf --max-time 30 -H 'Accept: application/geo+json' "$url/collections/$id/items?limit=1&f=json") ||
        die "[$what] GET /collections/$id/items failed"
    printf '%s' "$items" | grep -q '"type":"Feature"' ||
        die "[$what] /collections/$id/items?limit=1 has no feature: $(printf '%s' "$items" | head -c 300)"
    msg "[$what] /collections/$id/items?limit=1: a feature, numberMatched $(printf '%s' "$items" | grep -o '"numberMatched":[0-9]*' | cut -d: -f2)"
}

# --- 6. the embedded store ------------------------------------------------------------
"$docker" rm -f -v "$embedded" >/dev/null 2>&1 || true
msg "[embedded] docker run $hamn serve --demo-data /usr/share/hamn/data on 127.0.0.1:$port"
"$docker" run -d --name "$embedded" -p "127.0.0.1:$port:8080" "$hamn" serve --demo-data /usr/share/hamn/data >/dev/null ||
    die "[embedded] docker run failed"
running() { [ "$("$docker" inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" = true ]; }
if ! wait_ready "http://127.0.0.1:$port" embedded running "$embedded"; then
    "$docker" logs --tail 30 "$embedded" 2>&1 || true
    die "[embedded] not ready within $wait_max s (or the container stopped)"
fi
check_items "http://127.0.0.1:$port" embedded
# shellcheck disable=SC2016 # expanded in the container
msg "[embedded] runs as $("$docker" exec "$embedded" sh -c 'echo "$(id -un), store /var/lib/hamn:" $(ls /var/lib/hamn)')"
"$docker" rm -f -v "$embedded" >/dev/null
msg "[embedded] PASS"

# --- 7. the compose stack -------------------------------------------------------------
compose_env=(HAMN_IMAGE="$hamn" HAMN_POSTGIS_IMAGE="$postgis" HAMN_PORT="127.0.0.1:$compose_port")
dc() { env "${compose_env[@]}" "${compose[@]}" -p "$project" -f "$repo/docker-compose.yml" "$@"; }
dc down -v --remove-orphans >"$logs/compose.log" 2>&1 || true
msg "[compose] up -d (db: $postgis, hamn: $hamn on 127.0.0.1:$compose_port; log: $logs/compose.log)"
dc up -d --no-build >>"$logs/compose.log" 2>&1 || {
    tail -n 20 "$logs/compose.log"
    dc logs --tail 30 2>&1 || true
    die "[compose] up failed"
}
hamn_running() { [ -n "$(dc ps -q hamn 2>/dev/null)" ] && running "$(dc ps -q hamn)"; }
if ! wait_ready "http://127.0.0.1:$compose_port" compose hamn_running; then
    dc ps 2>&1 || true
    dc logs --tail 30 2>&1 || true
    die "[compose] hamn not ready within $wait_max s (or it stopped)"
fi
curl -sf --max-time 5 "http://127.0.0.1:$compose_port/ready" | grep -q '"store":"postgis"' ||
    die "[compose] hamn is not on PostGIS"
check_items "http://127.0.0.1:$compose_port" compose
msg "[compose] db health: $("$docker" inspect -f '{{.State.Health.Status}}' "$(dc ps -q db)")"
# The bulk download files (built in the background) on the hamn-data volume, not in a
# temporary directory: HAMN_DOWNLOAD_DIR in docker-compose.yml.
started=$(date +%s)
files=0
while [ "$(elapsed "$started")" -lt "$wait_max" ]; do
    files=$(dc exec -T hamn sh -c 'find /var/lib/hamn/downloads -type f 2>/dev/null | wc -l' | tr -dc 0-9)
    [ "${files:-0}" -gt 0 ] && break
    sleep 2
done
[ "${files:-0}" -gt 0 ] || die "[compose] no bulk download file in /var/lib/hamn/downloads within $wait_max s"
msg "[compose] $files bulk download files in /var/lib/hamn/downloads (the hamn-data volume) after $(elapsed "$started") s"
dc down -v --remove-orphans >>"$logs/compose.log" 2>&1 || die "[compose] down failed"
compose_env=()
msg "[compose] PASS"

# --- 8. clean up ----------------------------------------------------------------------
if [ "$remove_images" -eq 1 ]; then
    msg "removing the images and the build cache (--remove-images)"
    "$docker" image rm "$hamn" "$postgis" "$builder" "$base" >/dev/null 2>&1 || true
    "$docker" image ls --format '{{.Repository}}:{{.Tag}}' | grep -E '^hamn-(base|rust|postgis)/' |
        xargs -r "$docker" image rm >/dev/null 2>&1 || true
    "$docker" builder prune -af >/dev/null
else
    msg "images kept: $hamn $postgis $builder $base"
    "$docker" builder prune -f --filter type=source.local >/dev/null || true
fi
"$docker" image prune -f >/dev/null
"$docker" image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep '^hamn' || true
"$docker" system df
msg "PASS (hamn image built in $build_seconds s)"
