# Multi-stage build: compile in the Swift SDK image, run in a slim Debian with only the
# shared libraries the binary needs (zlib, OpenSSL; the Swift runtime is linked statically).
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
# The shipped default model's weights (configs/models/revsci-default.json names them by a
# relative path); the training checkpoint stays out of the image.
COPY models/revsci-default.safetensors /opt/revsci/models/revsci-default.safetensors
COPY openapi.yaml /opt/revsci/openapi.yaml
WORKDIR /opt/revsci
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["revsci"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080", "--data-dir", "/data"]
