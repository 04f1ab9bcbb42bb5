# The operator image the Helm chart (deploy/helm/kedge) runs:
#   docker build -t kedge:0.1.0 .
# Built with the `release-small` profile (size-optimized, whole-program LTO): the operator's
# resident code pages are ~10 MB fewer than with `release` (docs/benchmarks.md). The chart passes
# `operator …` as arguments.
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake clang \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --locked --profile release-small -p kedge \
    && cp target/release-small/kedge /kedge

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /kedge /usr/local/bin/kedge
# The chart's securityContext runs it as non-root; this is the same user for plain `docker run`.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/kedge"]
CMD ["operator"]
