# A static, non-root image of the controller, for builds with a container
# engine:
#   docker build -t ghcr.io/pullsecrets/pullsecrets-controller:0.1.0 .
# `make image` builds the released kind of image without one, reproducibly,
# and checks it (docs/image.md). Same compiler flags here.
#
# Both bases are pinned by the digest of their multi-arch index, so a rebuild
# cannot pick up a different base behind the same tag. They were taken from
# public pins, not resolved against the registries: golang:1.26 moved to
# 3c3e25a4... with the 1.26.8 release (Renovate, vtmocanu/uzi#1435,
# 2026-09-18; cilium v1.20.2 pins golang:1.26.8 to it too); distroless
# static:nonroot e2e927ec... is the pin of current Dockerfiles built with
# golang 1.27.1 (e.g. sapcc/vpa_butler). Check before a release, and refresh,
# with:
#   crane digest golang:1.26.8
#   crane digest gcr.io/distroless/static:nonroot
FROM golang:1.26.8@sha256:3c3e25a4da13fd0478eed2df1eb35a0e667094a7124d3993a6a1d30f71c17e79 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY internal/ internal/
ARG TARGETOS=linux TARGETARCH=amd64
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -buildvcs=false -ldflags="-s -w -buildid=" \
      -o /out/pullsecrets-controller ./cmd/pullsecrets-controller
# The credential provider plugins provider sources may name
# (docs/short-lived-tokens.md), pinned in hack/credproviders.
COPY hack/credproviders/ hack/credproviders/
COPY hack/build-credproviders.sh hack/
RUN PULLSECRETS_CACHE_DIR=/tmp/cache GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    cp -r "$(bash hack/build-credproviders.sh)" /out/credential-providers

# distroless/static: no shell, no package manager; uid 65532 (nonroot).
FROM gcr.io/distroless/static:nonroot@sha256:e2e927ec666bae08560abb3c55d0659eceabb657f56b6782ab500a9fc7f555e3
COPY --from=build /out/pullsecrets-controller /pullsecrets-controller
COPY --from=build /out/credential-providers/ /credential-providers/
USER 65532:65532
ENTRYPOINT ["/pullsecrets-controller"]
