# syntax=docker/dockerfile:1
# akvfs in a container: built with the official Swift image (the Swift runtime linked in
# statically, the binaries stripped), run from an image that holds only them, the shared libraries
# they load, CA certificates and fusermount3.
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
RUN swift package --scratch-path .build/shipping resolve
COPY Sources ./Sources
COPY Tests ./Tests
# scripts/build-release: static Swift runtime, and the code laid out for a small resident set.
COPY scripts/build-release scripts/hot-functions.txt scripts/hot-sections.ld scripts/hot-functions-csi.txt scripts/hot-sections-csi.ld ./scripts/
RUN bin=$(scripts/build-release akvfs akvfs-csi akvfs-keeper) \
 && install -D -s "$bin/akvfs" /out/usr/local/bin/akvfs \
 && install -D -s "$bin/akvfs-csi" /out/usr/local/bin/akvfs-csi \
 && install -D -s "$bin/akvfs-keeper" /out/usr/local/bin/akvfs-keeper \
 && mkdir -p /out/usr/local/sbin \
 && ln -s /usr/local/bin/akvfs /out/usr/local/sbin/mount.akvfs

# The runtime's files, gathered on Debian: the binaries, every shared library they and fusermount3
# load (ldd's closure, merged-/usr layout as Debian has it), CA certificates and FUSE's
# configuration. Each binary's libraries are resolved in the result, so one left out fails the build.
FROM debian:bookworm-slim AS rootfs
RUN apt-get update \
 && apt-get install -y --no-install-recommends fuse3 libcurl4 libssl3 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /rootfs/
RUN set -eu; \
    cd /rootfs; \
    mkdir -p usr/lib usr/lib64 usr/bin etc/ssl/certs tmp run; \
    chmod 1777 tmp; \
    ln -s usr/lib lib; ln -s usr/lib64 lib64; ln -s usr/bin bin; \
    cp /usr/bin/fusermount3 usr/bin/; \
    for program in usr/local/bin/* usr/bin/fusermount3; do ldd "$program"; done \
      | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u \
      | while read -r library; do mkdir -p "/rootfs${library%/*}"; cp -L "$library" "/rootfs$library"; done; \
    ldconfig -r /rootfs; \
    cp /etc/ssl/certs/ca-certificates.crt etc/ssl/certs/; \
    echo user_allow_other > etc/fuse.conf; \
    printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' > etc/passwd; \
    printf 'root:x:0:\nnogroup:x:65534:\n' > etc/group; \
    printf 'hosts: files dns\n' > etc/nsswitch.conf; \
    loader=$(ldd /usr/bin/fusermount3 | awk '$1 ~ /^\// { print $1 }'); \
    for program in /usr/local/bin/akvfs /usr/local/bin/akvfs-csi /usr/local/bin/akvfs-keeper /usr/bin/fusermount3; do \
        chroot /rootfs "$loader" --list "$program" > /tmp/libraries; \
        if grep "not found" /tmp/libraries; then echo "$program needs a library the image lacks" >&2; exit 1; fi; \
    done

# No shell, no package manager: what akvfs runs and nothing an intruder could use.
FROM scratch
COPY --from=rootfs /rootfs/ /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/bin
ENTRYPOINT ["/usr/local/bin/akvfs"]
CMD ["--help"]
