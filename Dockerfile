# syntax=docker/dockerfile:1
#
# mtpaas container image.
#
#   docker build -t mtpaas .
#   docker run --rm --env-file .env -p 10201:8085 mtpaas          # = mtpaas serve
#   docker run --rm --env-file .env mtpaas migrate                # any other subcommand
#
# The binary embeds its SQL migrations; the runtime stage only needs the binary,
# OpenSSL (libssl3) and CA certificates, curl (HEALTHCHECK) and the PostgreSQL client tools that
# `mtpaas backup` / `mtpaas restore` call (pg_dump / psql, version 15 = the
# compose file's postgres:15).

############################ build ############################
FROM rust:1.95-bookworm AS builder

WORKDIR /build
# Queries are checked at compile time only against the offline data in .sqlx/
# (when present); the build never needs a database.
ENV SQLX_OFFLINE=true \
    CARGO_TERM_COLOR=never

# sqlx and reqwest use OpenSSL (libpq's TLS, which accepts the self-signed X.509 v1
# certificates rustls refuses): its headers and pkg-config (already in this image;
# installed here should the base image change).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*

COPY . .

# Registry, git checkouts and target/ live in BuildKit cache mounts, so a rebuild
# after a source change recompiles only the crate itself. The binary is copied out
# of the cache mount before the step ends.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/build/target,sharing=locked \
    cargo build --release --locked --bin mtpaas \
 && install -D -m 0755 target/release/mtpaas /out/mtpaas

########################### runtime ###########################
FROM debian:bookworm-slim AS runtime

ARG APP_UID=10001
ARG APP_GID=10001

RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl libssl3 postgresql-client \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid "${APP_GID}" mtpaas \
 && useradd --system --uid "${APP_UID}" --gid mtpaas --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin mtpaas \
 && install -d -o mtpaas -g mtpaas -m 0750 /app /app/backups

COPY --from=builder /out/mtpaas /usr/local/bin/mtpaas
# Not read at runtime (the migrations are compiled into the binary); kept next to
# the binary for operators who want to read what `mtpaas migrate` applies.
COPY --chown=root:root migrations/ /app/migrations/

WORKDIR /app
USER mtpaas:mtpaas

ENV PORT=8085 \
    HOST=0.0.0.0 \
    BACKUP_DIR=/app/backups \
    RUST_LOG=info

EXPOSE 8085

# /api/ready answers 200 only when PostgreSQL answers.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:${PORT}/api/ready" || exit 1

STOPSIGNAL SIGTERM
ENTRYPOINT ["mtpaas"]
CMD ["serve"]
