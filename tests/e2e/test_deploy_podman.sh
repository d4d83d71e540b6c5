#!/usr/bin/env bash
# The shipped container artefacts, for real: builds deploy/Dockerfile with podman, starts
# docker-compose.yml through podman's Docker-compatible socket, feeds the gateway a Telegram
# webhook on its published loopback port and reads the event back from the compose Redis.
# Nothing leaves the machine: the Telegram API base points at a port that refuses, and the
# only outside traffic is the Debian archive for the image builds.
# Skips (exit 0, loudly) only when podman itself cannot run a container here.
set -euo pipefail
src="${DB_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
cd "$src"
t0=$SECONDS
log() { echo "[$((SECONDS - t0))s] $*"; }
fail() { echo "FAIL: $*"; exit 1; }

need=(podman buildah debootstrap runc netavark aardvark-dns slirp4netns fuse-overlayfs newuidmap
      iptables docker-compose curl redis-cli)
missing=()
for b in "${need[@]}"; do command -v "$b" >/dev/null || [ -x "/usr/lib/podman/$b" ] || missing+=("$b"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    # On a CI machine (CI=true) a missing tool is a broken CI image: fail, do not pass quietly.
    [ "${CI:-}" = true ] && fail "CI=true: podman tooling missing (${missing[*]}) and not root to install it"
    echo "SKIPPED: podman tooling missing (${missing[*]}) and not root to install it"
    echo "0 passed, 0 failed, 1 skipped"; exit 0
  fi
  log "installing ${missing[*]} and friends with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends podman buildah debootstrap runc \
      netavark aardvark-dns slirp4netns fuse-overlayfs uidmap containernetworking-plugins iptables \
      docker-compose curl redis-tools; } >/dev/null 2>&1 || fail "apt-get install of the podman tooling failed"
fi

# One run at a time: the iptables and ip_forward clean-up below assumes no other run's
# containers are using netavark's rules.
lockdir=/var/cache/deskbridge-ci
mkdir -p "$lockdir" 2>/dev/null || lockdir=/tmp
exec 8>"$lockdir/podman-test.lock"
flock -w 300 8 || fail "another test_deploy_podman run holds $lockdir/podman-test.lock"

work=$(mktemp -d /tmp/db-deploy-podman.XXXXXX)
project="dbdeploy$$"
svc_pid=""
fwd_before=$(cat /proc/sys/net/ipv4/ip_forward 2>/dev/null || echo "")
nv_before=$( (iptables -S; iptables -t nat -S) 2>/dev/null | grep -c NETAVARK || true)
mkdir -p "$work/storage" "$work/run" "$work/tmp"
# runc, not crun (cgroup hybrid mode), and ulimits this VM allows: see docs/deployment.md.
cat >"$work/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
CONF
cat >"$work/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$work/storage"
runroot = "$work/run"
CONF
export CONTAINERS_CONF="$work/containers.conf" CONTAINERS_STORAGE_CONF="$work/storage.conf"
export TMPDIR="$work/tmp"
export DOCKER_HOST="unix://$work/podman.sock"
dc() { docker-compose -p "$project" --env-file "$work/env" -f "$src/docker-compose.yml" "$@"; }

cleanup() {
  set +e
  if [ -n "$svc_pid" ] && [ -f "$work/env" ]; then dc down -v -t 5 >"$work/down.log" 2>&1; fi
  podman rm -af -t 2 >/dev/null 2>&1
  podman network rm -f "${project}_default" >/dev/null 2>&1
  podman volume prune -f >/dev/null 2>&1
  [ -n "$svc_pid" ] && kill "$svc_pid" 2>/dev/null && wait "$svc_pid" 2>/dev/null
  podman rmi -af >/dev/null 2>&1 # this run's store only (CONTAINERS_STORAGE_CONF)
  # netavark leaves its iptables chains and ip_forward=1 behind; undo what this run added.
  if [ "$nv_before" = 0 ]; then
    for table in filter nat; do
      iptables -t "$table" -S 2>/dev/null | grep -E '^-A (INPUT|FORWARD|OUTPUT|PREROUTING|POSTROUTING) .*NETAVARK' |
        sed 's/^-A/-D/' | while read -r rule; do eval "iptables -t $table $rule" 2>/dev/null; done
      for chain in $(iptables -t "$table" -S 2>/dev/null | awk '/^-N NETAVARK/ {print $2}'); do
        iptables -t "$table" -F "$chain" 2>/dev/null
      done
      for chain in $(iptables -t "$table" -S 2>/dev/null | awk '/^-N NETAVARK/ {print $2}'); do
        iptables -t "$table" -X "$chain" 2>/dev/null
      done
    done
  fi
  [ -n "$fwd_before" ] && echo "$fwd_before" >/proc/sys/net/ipv4/ip_forward 2>/dev/null
  grep -q "$work/storage" /proc/mounts && awk -v w="$work" '$2 ~ "^" w {print $2}' /proc/mounts | sort -r | xargs -r umount -l
  rm -rf "$work"
}
trap cleanup EXIT

# ---- can podman run anything at all? ----
log "base image (debootstrap, cached under /var/cache/deskbridge-ci)"
tarball=$(bash "$src/tests/deploy/base_image.sh") || fail "no Debian base image"
podman import -q --change 'CMD ["/bin/bash"]' "$tarball" localhost/debian:bookworm-slim >/dev/null ||
  fail "podman import failed"
# The Docker API (docker-compose) spells short names as docker.io/library/...
podman tag localhost/debian:bookworm-slim docker.io/library/debian:bookworm-slim
if ! out=$(podman run --rm --network none localhost/debian:bookworm-slim true 2>&1); then
  echo "################################################################"
  echo "SKIPPED: podman cannot run a container on this machine:"
  echo "$out" | tail -5
  echo "################################################################"
  echo "0 passed, 0 failed, 1 skipped"
  exit 0
fi

# ---- images ----
log "building deploy/Dockerfile"
podman build --pull=never -f deploy/Dockerfile -t localhost/deskbridge:test . >"$work/build.log" 2>&1 || {
  tail -40 "$work/build.log"; fail "podman build of deploy/Dockerfile failed"; }
size=$(podman image inspect localhost/deskbridge:test --format '{{.Size}}')
log "image localhost/deskbridge:test: $((size / 1000000)) MB"
[ "$size" -lt 250000000 ] || fail "final image is $size bytes; the runtime stage should stay small"
user=$(podman image inspect localhost/deskbridge:test --format '{{.Config.User}}')
[ "$user" = "10001:10001" ] || fail "image runs as '$user', expected the non-root 10001:10001"
podman run --rm --entrypoint /bin/sh localhost/deskbridge:test -c 'command -v gcc cc cmake' &&
  fail "the final image still has a compiler"
podman run --rm localhost/deskbridge:test --version | grep -q '^deskbridge ' || fail "deskbridge --version"
podman build --pull=never -f tests/deploy/redis.Dockerfile -t localhost/deskbridge-test-redis:latest \
  tests/deploy >"$work/build-redis.log" 2>&1 || { tail -20 "$work/build-redis.log"; fail "redis test image"; }

# ---- compose stack ----
podman system service --time=0 "$DOCKER_HOST" >"$work/service.log" 2>&1 &
svc_pid=$!
for _ in $(seq 50); do [ -S "$work/podman.sock" ] && break; sleep 0.1; done
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
token="7000000001:AAF-deploy-test-token-not-real"
secret="deploy-test-webhook-secret"
cat >"$work/env" <<ENV
DESKBRIDGE_IMAGE=localhost/deskbridge:test
REDIS_IMAGE=localhost/deskbridge-test-redis:latest
DESKBRIDGE_PORT=$port
DESKBRIDGE_API_TOKEN=deploy-test-api-token-0123456789
TELEGRAM_BOT_TOKEN=$token
TELEGRAM_WEBHOOK_SECRET=$secret
TELEGRAM_API_BASE=http://127.0.0.1:9
ENV
log "docker-compose up (project $project, port 127.0.0.1:$port)"
timeout 180 docker-compose -p "$project" --env-file "$work/env" -f "$src/docker-compose.yml" up -d --no-build \
  >"$work/up.log" 2>&1 || { cat "$work/up.log"; fail "docker-compose up"; }
gw="http://127.0.0.1:$port"
ok=""
for _ in $(seq 150); do curl -sf "$gw/readyz" >/dev/null 2>&1 && { ok=1; break; }; sleep 0.2; done
[ -n "$ok" ] || { dc logs >"$work/logs.txt" 2>&1; tail -30 "$work/logs.txt"; fail "/readyz never answered 200 on $gw"; }
log "gateway ready"
passed=0

# The image's HEALTHCHECK (no systemd here, so run it by hand): the probe script must pass.
gwc=$(podman ps --filter "label=com.docker.compose.project=$project" --filter "label=com.docker.compose.service=deskbridge" --format '{{.Names}}' | head -1)
[ -n "$gwc" ] || fail "no deskbridge container found"
podman healthcheck run "$gwc" >/dev/null || fail "the container healthcheck failed on a healthy gateway"
podman exec "$gwc" /usr/local/bin/deskbridge-healthcheck /no-such-path && fail "healthcheck probe passes on a 404"
passed=$((passed + 1)); log "ok healthcheck"

# Hardening from the compose file really applies.
[ "$(podman exec "$gwc" id -u)" = 10001 ] || fail "gateway does not run as uid 10001"
podman exec "$gwc" sh -c 'echo x > /usr/local/bin/x' 2>/dev/null && fail "root filesystem is writable"
capeff=$(podman exec "$gwc" awk '/^CapEff/ {print $2}' /proc/1/status)
[ "$capeff" = 0000000000000000 ] || fail "gateway keeps capabilities ($capeff)"
passed=$((passed + 1)); log "ok non-root, read-only, no capabilities"

# Redis persistence settings of the compose file.
rcli() { dc exec -T redis redis-cli "$@"; }
[ "$(rcli CONFIG GET appendonly | tail -1 | tr -d '\r')" = yes ] || fail "redis appendonly is not yes"
[ "$(rcli CONFIG GET appendfsync | tail -1 | tr -d '\r')" = everysec ] || fail "redis appendfsync is not everysec"
passed=$((passed + 1)); log "ok redis AOF everysec"

# A webhook with the wrong secret is refused and writes nothing.
body='{"update_id":810001,"message":{"message_id":77,"date":1795365000,"chat":{"id":5550001,"type":"private","first_name":"Olha"},"from":{"id":5550001,"is_bot":false,"first_name":"Olha"},"text":"deploy check: where is my parcel?"}}'
hook="$gw/webhooks/telegram/7000000001"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$hook" -H 'Content-Type: application/json' \
  -H "X-Telegram-Bot-Api-Secret-Token: wrong-secret" -d "$body")
[ "$code" -ge 400 ] || fail "a webhook with the wrong secret got HTTP $code"
[ "$(rcli XLEN deskbridge:events | tr -d '\r')" = 0 ] || fail "a refused webhook reached the stream"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$hook" -H 'Content-Type: application/json' \
  -H "X-Telegram-Bot-Api-Secret-Token: $secret" -d "$body")
[ "$code" = 200 ] || fail "webhook with the right secret got HTTP $code"
rcli XRANGE deskbridge:events - + >"$work/xrange.txt"
grep -q 'deploy check: where is my parcel?' "$work/xrange.txt" || { cat "$work/xrange.txt"; fail "event not in deskbridge:events"; }
grep -q 'telegram:7000000001:5550001' "$work/xrange.txt" || { cat "$work/xrange.txt"; fail "event has not the expected conversation"; }
passed=$((passed + 1)); log "ok webhook -> stream"

# The demo consumer prints it.
seen=""
for _ in $(seq 50); do
  dc logs --no-color demo-consumer >"$work/consumer.log" 2>&1
  grep -q 'deploy check: where is my parcel?' "$work/consumer.log" && { seen=1; break; }
  sleep 0.2
done
[ -n "$seen" ] || { tail -20 "$work/consumer.log"; fail "the demo consumer did not print the event"; }
passed=$((passed + 1)); log "ok demo consumer"

# Secrets stay out of the logs.
dc logs --no-color deskbridge >"$work/gateway.log" 2>&1
grep -q 'deploy-test-token-not-real\|deploy-test-webhook-secret\|deploy-test-api-token' "$work/gateway.log" &&
  fail "a secret reached the gateway log"
grep -q 'where is my parcel' "$work/gateway.log" && fail "message text reached the gateway log"
passed=$((passed + 1)); log "ok no secrets or message text in logs"

# Stopping: the gateway exits on SIGTERM within the grace period and down removes everything.
t_down=$SECONDS
timeout 60 docker-compose -p "$project" --env-file "$work/env" -f "$src/docker-compose.yml" down -v -t 15 \
  >"$work/down.log" 2>&1 || { cat "$work/down.log"; fail "docker-compose down"; }
# Every service must stop on SIGTERM itself rather than be killed at the 15 s timeout.
[ $((SECONDS - t_down)) -lt 12 ] || fail "compose down took $((SECONDS - t_down)) s: a service ignores SIGTERM"

left=$(podman ps -a --filter "label=com.docker.compose.project=$project" -q | wc -l)
[ "$left" = 0 ] || fail "$left containers left after down"
podman network exists "${project}_default" && fail "network ${project}_default left after down"
passed=$((passed + 1)); log "ok compose down"

echo "$passed passed, 0 failed"
