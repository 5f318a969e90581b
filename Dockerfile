# syntax=docker/dockerfile:1
# akvfs in a container: build with the official Swift image, run on a slim Debian with only the
# runtime libraries (the Swift runtime is linked in statically, the binaries stripped).
# scripts/container-test builds the runtime stage from binaries built on the host and runs it.
#
#   docker build -t akvfs .
#   docker run --rm --device /dev/fuse --cap-add SYS_ADMIN \
#     --mount type=bind,source=/mnt/kv,target=/mnt/kv,bind-propagation=shared \
#     -e AZURE_CLIENT_ID=... akvfs mount myvault /mnt/kv --allow-other

FROM swift:6.3-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libfuse3-dev libcurl4-openssl-dev libssl-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so source edits do not refetch them.
COPY Package.swift ./
RUN swift package resolve
COPY Sources ./Sources
COPY Tests ./Tests
RUN swift build -c release --product akvfs --static-swift-stdlib \
 && swift build -c release --product akvfs-csi --static-swift-stdlib \
 && swift build -c release --product akvfs-keeper --static-swift-stdlib \
 && install -D -s .build/release/akvfs /out/usr/local/bin/akvfs \
 && install -D -s .build/release/akvfs-csi /out/usr/local/bin/akvfs-csi \
 && install -D -s .build/release/akvfs-keeper /out/usr/local/bin/akvfs-keeper \
 && mkdir -p /out/usr/local/sbin \
 && ln -s /usr/local/bin/akvfs /out/usr/local/sbin/mount.akvfs

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends fuse3 libcurl4 libssl3 ca-certificates \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && echo user_allow_other >> /etc/fuse.conf
COPY --from=build /out/ /
ENTRYPOINT ["/usr/local/bin/akvfs"]
CMD ["--help"]
