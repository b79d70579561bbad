# serialbox appliance image: a static binary on a distroless base, run as a non-root user.
#   docker build -t serialbox .
#   docker run -p 4100:4100 -v serialbox-data:/data serialbox
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# cgo for mattn/go-sqlite3, linked statically; osusergo and netgo keep glibc's NSS out.
RUN CGO_ENABLED=1 go build -trimpath \
      -tags sqlite_omit_load_extension,osusergo,netgo \
      -ldflags "-s -w -X main.version=${VERSION} -linkmode external -extldflags -static" \
      -o /out/serialbox ./cmd/serialbox \
 && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/serialize ./cmd/serialize \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/serialbox /out/serialize /usr/local/bin/
COPY --from=build --chown=nonroot:nonroot /out/data /data
USER nonroot:nonroot
VOLUME ["/data"]
EXPOSE 4100
ENV SERIALBOX_DATA_DIR=/data
ENTRYPOINT ["/usr/local/bin/serialbox"]
CMD ["serve"]
