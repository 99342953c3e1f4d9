# A static, non-root image of the controller.
#   docker build -t pullsecrets-controller .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY internal/ internal/
ARG TARGETOS=linux TARGETARCH=amd64
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags="-s -w" -o /out/pullsecrets-controller ./cmd/pullsecrets-controller

# distroless/static: no shell, no package manager; uid 65532 (nonroot).
FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/pullsecrets-controller /pullsecrets-controller
USER 65532:65532
ENTRYPOINT ["/pullsecrets-controller"]
