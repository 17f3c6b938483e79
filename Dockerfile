# syntax=docker/dockerfile:1
# hamn — open geodata API server.
#   docker build -t hamn .
#   docker run --rm -p 8080:8080 -v hamn-data:/var/lib/hamn hamn
# or with PostGIS: docker compose up --build

# ---- build -------------------------------------------------------------------
FROM rust:1-bookworm AS builder
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
FROM debian:bookworm-slim
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
