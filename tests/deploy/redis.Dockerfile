# Stand-in for the official redis image in tests/e2e/test_deploy_podman.sh, which cannot pull
# from a registry: Debian's redis-server and redis-cli, running as the redis user in /data,
# like the official image does.  Not for production.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server redis-tools \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data && chown redis:redis /data
USER redis
WORKDIR /data
EXPOSE 6379
CMD ["redis-server", "--dir", "/data", "--protected-mode", "no"]
