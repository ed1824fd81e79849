# mlscaler container image: the one binary on a slim Debian base, run as a
# non-root user. A batch tool: every `docker run` is one train, backtest or
# scale run that exits with the command's exit code (see the README).
#
#   docker build -t mlscaler .
#   docker run --rm mlscaler scale --dry-run        # the demo on the bundled sample
#
# pipelines/build.yml passes VERSION, REVISION, CREATED and SOURCE for the OCI labels
# and tags the image with the commit (an immutable tag); deployments pin the
# image by that tag or by its digest, never by `latest`.
#
# Base images are pinned by digest, so that a rebuild gets the same bits;
# the tag next to each digest says what it is. To move to a newer patch of
# the same tag, look the digest up (`docker buildx imagetools inspect
# rust:1.95-bookworm`) and replace it in both places (or let Renovate or
# Dependabot propose it).
ARG RUST_IMAGE=rust:1.95-bookworm@sha256:6258907abe69656e41cd992e0b705cdcfabcbbe3db374f92ed2d47121282d4a1
ARG RUNTIME_IMAGE=debian:bookworm-slim@sha256:3783cc01769c7b2b1b83a5c5ad96c815348e28ed7da68e2e3687004faa906251

# The workspace reduced to its manifests, Cargo.lock and stub targets (see
# scripts/cargo-skeleton): the same bytes until a manifest or the lock changes.
FROM ${RUST_IMAGE} AS skeleton
WORKDIR /src
COPY . .
RUN scripts/cargo-skeleton skeleton

FROM ${RUST_IMAGE} AS build
WORKDIR /src
# 1. Every dependency, compiled against the stubs: Docker reuses this layer
#    until Cargo.toml or Cargo.lock changes.
COPY --from=skeleton /src/skeleton/ ./
RUN cargo build --release --locked --bin mlscaler
# 2. The real sources, touched so that they are newer than the stubs just
#    compiled (COPY keeps the build context's timestamps, and cargo would
#    otherwise take the stubs' build as up to date); then only mlscaler
#    itself compiles. scripts/check-deploy runs these build stages, command
#    by command, on a clean export of the commit.
COPY . .
RUN find . -path ./target -prune -o -name '*.rs' -exec touch {} + && cargo build --release --locked --bin mlscaler

FROM ${RUNTIME_IMAGE} AS runtime
# ca-certificates: Blob Storage, Entra ID and ARM are reached over HTTPS. Its
# version is not pinned on purpose: it must follow Debian's security updates
# (the base image digest pins the release).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 10001 --user-group --no-create-home --home-dir /work --shell /usr/sbin/nologin mlscaler \
 && mkdir -p /work \
 && chown mlscaler:mlscaler /work
COPY --from=build /src/target/release/mlscaler /usr/local/bin/mlscaler
# The working directory holds what a run writes by default (models/,
# mlscaler-state.json, decisions.jsonl): mount a volume here to keep them.
WORKDIR /work
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/mlscaler"]
CMD ["--help"]

# OCI image annotations (https://github.com/opencontainers/image-spec/blob/main/annotations.md).
# Last, so that a new revision changes only this metadata layer.
ARG VERSION=unknown
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="mlscaler" \
      org.opencontainers.image.description="Predictive, ML-driven node scaler for AKS agent pools and Azure VM Scale Sets" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim"
