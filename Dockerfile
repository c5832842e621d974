# syntax=docker/dockerfile:1
# Two images from one build: the manager (default target) and the PreStop drain helper
# (`docker build --target drain`), both static binaries on a distroless non-root base.
FROM golang:1.26 AS builder
ARG TARGETOS=linux
ARG TARGETARCH=amd64
WORKDIR /workspace
COPY go.mod go.sum ./
RUN go mod download
COPY main.go ./
COPY api/ api/
COPY cmd/ cmd/
COPY controllers/ controllers/
COPY internal/ internal/
ARG VERSION=devel
ENV CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH}
RUN go build -trimpath -ldflags="-s -w -X github.com/convoy-dev/convoy/internal/version.Version=${VERSION}" -o manager . && \
    go build -trimpath -ldflags="-s -w -X github.com/convoy-dev/convoy/internal/version.Version=${VERSION}" -o convoy-drain ./cmd/convoy-drain

FROM gcr.io/distroless/static:nonroot AS drain
COPY --from=builder /workspace/convoy-drain /convoy-drain
USER 65532:65532
ENTRYPOINT ["/convoy-drain"]

FROM gcr.io/distroless/static:nonroot
WORKDIR /
COPY --from=builder /workspace/manager .
USER 65532:65532
ENTRYPOINT ["/manager"]
