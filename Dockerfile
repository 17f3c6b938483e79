# hamn — open geodata API server.
#   docker build -t hamn .          (BuildKit: the default since Docker 23; DOCKER_BUILDKIT=1 before)
#   docker run --rm -p 8080:8080 -v hamn-data:/var/lib/hamn hamn
# or with PostGIS: docker compose up --build
# No "# syntax=" line: BuildKit would pull that frontend image from Docker Hub; the built-in
# frontend (Docker 20.10 and later) has everything used here (RUN --mount=type=cache).
#
# The base images are arguments so that the image can be built without Docker Hub, from
# images made locally (scripts/docker-check.sh makes them from a debootstrap root):
#   BUILDER_IMAGE  Debian 12 with a Rust toolchain (cargo, rustc) on PATH, CARGO_HOME
#                  /usr/local/cargo, and a C compiler;
#   BASE_IMAGE     Debian 12 (bookworm), as small as it comes.
ARG BUILDER_IMAGE=rust:1-bookworm
ARG BASE_IMAGE=debian:bookworm-slim

# ---- build -------------------------------------------------------------------
FROM ${BUILDER_IMAGE} AS builder
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libgdal-dev clang libclang-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
# The admin API's OpenAPI document, compiled in (include_str!) and served at /admin/api.
COPY openapi ./openapi
# MapLibre's build, compiled into the binary (include_bytes!) and served by hamn.
COPY assets ./assets
# Dependency caching: BuildKit cache mounts for the registry and target/ (the
# binary is copied out of the cache mount in the same step).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
 && install -m 0755 target/release/hamn /usr/local/bin/hamn

# ---- runtime -----------------------------------------------------------------
FROM ${BASE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libgdal32 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN useradd --system --user-group --home-dir /var/lib/hamn --shell /usr/sbin/nologin hamn \
 && mkdir -p /var/lib/hamn \
 && chown hamn:hamn /var/lib/hamn
COPY --from=builder /usr/local/bin/hamn /usr/local/bin/hamn
COPY data /usr/share/hamn/data
# The demo data ships in the image but is loaded only when asked for:
#   docker run -p 8080:8080 hamn serve --demo-data /usr/share/hamn/data
ENV HAMN_BIND=0.0.0.0:8080 \
    HAMN_DATA_DIR=/var/lib/hamn
VOLUME /var/lib/hamn
WORKDIR /var/lib/hamn
USER hamn
EXPOSE 8080
# No HEALTHCHECK: the slim image has no curl/wget, and adding one only for that
# is not worth it; orchestrators can probe GET http://<host>:8080/health themselves.
ENTRYPOINT ["hamn"]
CMD ["serve"]
