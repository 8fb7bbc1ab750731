# syntax=docker/dockerfile:1.7
# Flashsale: one image, every role (`flashsale all|serve|worker|consumer <name>|migrate`).
#   docker build --build-arg VERSION=$(git describe --always --dirty) -t flashsale .
#   docker run --rm -p 8080:8080 flashsale serve
# confluent-kafka-go links its bundled librdkafka statically with cgo on glibc, so both stages
# are Debian 12 (bookworm): the binary needs only glibc at run time.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=1 GOFLAGS=-mod=readonly
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/flashsale ./cmd/flashsale \
 && /out/flashsale version \
 && mkdir -p /out/home/var/mail

# distroless/cc: glibc and libgcc, no shell, no package manager; runs as uid 65532 (nonroot).
FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="flashsale" \
      org.opencontainers.image.description="Flash-sale platform: API, order worker, Kafka consumers, migrations" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/flashsale /usr/local/bin/flashsale
# MAIL_DIR (var/mail, used when SMTP_ADDR is empty) is relative to the working directory; it
# exists and belongs to nonroot, so a volume mounted there is writable too.
COPY --from=build --chown=nonroot:nonroot /out/home/var /home/nonroot/var
WORKDIR /home/nonroot
USER nonroot:nonroot
ENV HTTP_ADDR=:8080 LOG_FORMAT=json
EXPOSE 8080
# No shell or curl here: the binary probes its own /healthz (HTTP_ADDR). Roles without an HTTP
# server (worker, consumers, migrate) disable it in docker-compose.yml / have none on ECS.
HEALTHCHECK --interval=10s --timeout=4s --start-period=20s --retries=3 \
    CMD ["/usr/local/bin/flashsale", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/flashsale"]
CMD ["all"]
