# syntax=docker/dockerfile:1.7
#
# BlindLedger: one image, three services and the CLI.
#
#   docker build -t blindledger:0.1.0 .
#
# Entry points (the orchestrator picks one with its `command`; the default is the ledger):
#   blindledger-ledger     --config /etc/blindledger/ledger.toml      gRPC 50051, metrics 9464
#   blindledger-controller --config /etc/blindledger/controller.toml  HTTP(S) 8181 (bundles, API), metrics 9465
#   blindledger-audit      --config /etc/blindledger/audit.toml       HTTP(S) 8088 (dashboard, API), metrics 9466
#   blindledger            db migrate | db prune | audit archive | policy build | token issue ...
#                                                                      (one-shot jobs, CronJobs, operators)
# The ports are those of deploy/: each service serves TLS when its configuration has
# tls_cert (client certificates required with tls_client_ca), and its metrics port
# (metrics_addr) is plain HTTP with /metrics and the health route only, for Prometheus
# and probes that have no client certificate.
#
# Every service reads its configuration from the TOML file given with --config, then from
# its own variables (BLINDLEDGER_LEDGER_*, BLINDLEDGER_CONTROLLER_*, BLINDLEDGER_AUDIT_*);
# `<binary> --help` lists the keys. SIGTERM stops a service gracefully (exit 0).
#
# No HEALTHCHECK: the ledger speaks gRPC, and checking grpc.health.v1 needs a gRPC client
# this image does not carry; the orchestrator probes instead (Kubernetes `grpc:` probes,
# HTTP probes for the controller's /health and the audit service's /healthz on their
# metrics ports; see deploy/k8s/ and deploy/compose/). One image-level check could not fit
# three entry points anyway.

# The toolchain is pinned by the image tag; keep it equal to rust-toolchain.toml's
# `channel` (scripts/validate-deploy.sh checks it). rust-toolchain.toml itself stays out
# of the build context (.dockerignore): its extra components (rustfmt, clippy) are not
# needed to build, and rustup would try to download them.
ARG RUST_VERSION=1.95.0
# Builder and runtime share the Debian release, so the binaries find the glibc they were
# linked against.
ARG DEBIAN_RELEASE=bookworm

# ---------------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS builder

# What the build needs beyond the slim Rust image (which has gcc and libc6-dev for ring
# and the bundled SQLite): nothing. protoc comes from the protoc-bin-vendored crate
# (crates/proto/build.rs), so no system protobuf-compiler is installed.
WORKDIR /src
ENV CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0 \
    CARGO_NET_RETRY=5

COPY . .

# Cache mounts keep the registry and the target directory between builds (BuildKit);
# the binaries are copied out of the cached target directory, which is not part of the
# layer. --locked: the build uses Cargo.lock as committed, or fails.
RUN --mount=type=cache,id=blindledger-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=blindledger-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=blindledger-target,target=/src/target,sharing=locked \
    cargo build --release --locked \
        --bin blindledger-ledger \
        --bin blindledger-controller \
        --bin blindledger-audit \
        --bin blindledger \
    && mkdir -p /out/bin \
    && cp target/release/blindledger-ledger \
          target/release/blindledger-controller \
          target/release/blindledger-audit \
          target/release/blindledger \
          /out/bin/

# ---------------------------------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim AS runtime

LABEL org.opencontainers.image.title="blindledger" \
      org.opencontainers.image.description="BlindLedger: gRPC and HTTP services computing on TFHE-encrypted transactions, and the blindledger CLI" \
      org.opencontainers.image.licenses="Apache-2.0"

# ca-certificates: TLS to bundle servers, identity providers' JWKS, webhooks, OTLP.
# Nothing else: no compiler, no package manager cache, no shell tools beyond the base
# image's. The state directories exist in the image, owned by the service user, so that
# a fresh named volume mounted on them (Docker, Compose) starts with that ownership.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 blindledger \
    && useradd --system --uid 10001 --gid 10001 \
         --home-dir /var/lib/blindledger --no-create-home --shell /usr/sbin/nologin blindledger \
    && install -d -m 0755 /etc/blindledger \
    && install -d -o 10001 -g 10001 -m 0750 \
         /var/lib/blindledger \
         /var/lib/blindledger/objects \
         /var/lib/blindledger/checkpoints \
         /var/lib/blindledger/bundles

COPY --from=builder /out/bin/ /usr/local/bin/
# The shipped Rego policy, for `blindledger policy test|build` in a one-shot job (the
# compose stack builds and signs its first bundle from it). The services themselves load
# policy only as signed bundles.
COPY policies/ /usr/share/blindledger/policies/

# Numeric, so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd
# (deploy/k8s sets runAsUser 10001 too; the state directories above belong to it).
USER 10001:10001
WORKDIR /var/lib/blindledger

# ledger gRPC and metrics, controller HTTP(S) and metrics, audit HTTP(S) and metrics (the
# services' defaults bind 127.0.0.1 or nothing: the mounted configuration sets
# listen_addr and metrics_addr = "0.0.0.0:<port>").
EXPOSE 50051 9464 8181 9465 8088 9466

STOPSIGNAL SIGTERM
CMD ["blindledger-ledger", "--config", "/etc/blindledger/ledger.toml"]
