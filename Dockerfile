# syntax=docker/dockerfile:1
#
# culprit as a static binary on distroless: no shell, no package manager,
# runs as nonroot (uid 65532). Build with
#
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t culprit .
#
# The Go version must stay the one in go.mod (cmd/culprit/compose_test.go
# checks it).

FROM golang:1.26-bookworm AS build
WORKDIR /src
# Modules first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
# CGO off: the SQLite driver (modernc.org/sqlite) is pure Go, so the binary
# needs no libc and runs on distroless/static.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/culprit ./cmd/culprit \
 && mkdir -p /out/var/lib/culprit

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/culprit /culprit
# The store lives here. The directory belongs to nonroot so that a fresh
# named volume, which copies the image's ownership, is writable.
COPY --from=build --chown=65532:65532 /out/var/lib/culprit /var/lib/culprit
VOLUME /var/lib/culprit
# Relative paths (simulate --out culprit-sim) land in the volume too.
WORKDIR /var/lib/culprit
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/culprit"]
