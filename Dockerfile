# syntax=docker/dockerfile:1
#
# The Palisade image: one static binary on a distroless base, run as a
# non-root numeric user, nothing written to the root filesystem (the
# Deployment sets readOnlyRootFilesystem: true).
#
#   docker build -t ghcr.io/palisade-dev/palisade:0.1.0 .
#
# The tag must match `image:` in manifests/deployment.yaml (a test checks it).

FROM rust:1.95-bookworm AS builder
# musl-tools gives the C compiler `ring` (TLS) needs for the musl target.
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools \
    && rm -rf /var/lib/apt/lists/* \
    && rustup target add x86_64-unknown-linux-musl
ENV CC_x86_64_unknown_linux_musl=musl-gcc
WORKDIR /src
# Only what the build reads; Cargo.toml names the benches, so Cargo needs
# their files to load the manifest even though it does not build them.
COPY Cargo.toml Cargo.lock ./
COPY benches ./benches
COPY src ./src
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --locked --release --target x86_64-unknown-linux-musl --bin palisade \
    && cp target/x86_64-unknown-linux-musl/release/palisade /palisade

# distroless/static: CA certificates, /etc/passwd with `nonroot` (65532),
# no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=builder /palisade /palisade
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/palisade"]
CMD ["operator"]
