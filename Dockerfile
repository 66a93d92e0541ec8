# Multi-stage build: compile in the Swift SDK image, run in a slim Debian with only the
# shared libraries the binary needs (zlib, OpenSSL, the Swift runtime it was linked with).
FROM swift:6.3-bookworm AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends zlib1g-dev libssl-dev && rm -rf /var/lib/apt/lists/*
COPY Package.swift ./
COPY Sources ./Sources
COPY Tests ./Tests
RUN swift build -c release --product revsci --static-swift-stdlib \
    && mkdir -p /out && cp .build/release/revsci /out/

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends zlib1g libssl3 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/revsci /usr/local/bin/revsci
COPY configs /opt/revsci/configs
WORKDIR /opt/revsci
ENTRYPOINT ["revsci"]
CMD ["--help"]
