# mlscaler container image: the one binary on a slim Debian base, run as a
# non-root user. A batch tool: every `docker run` is one train, backtest or
# scale run that exits with the command's exit code (see the README).
#
#   docker build -t mlscaler .
#   docker run --rm mlscaler scale --dry-run        # the demo on the bundled sample
#
# Base images are pinned by tag. In production also pin them by digest
# (FROM rust:1.95-bookworm@sha256:...) so that a rebuild gets the same bits,
# and let a bot propose digest updates.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# scripts/check-deploy runs this exact command on a clean checkout of the
# commit: keep it on one line.
RUN cargo build --release --locked --bin mlscaler

FROM debian:bookworm-slim AS runtime
# ca-certificates: Blob Storage, Entra ID and ARM are reached over HTTPS. Its
# version is not pinned on purpose: it must follow Debian's security updates
# (the base image tag pins the release).
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
