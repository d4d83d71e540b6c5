#!/usr/bin/env bash
# Offline checks of the deployment files: compose, Kubernetes, systemd, Prometheus, the
# Dockerfile and its healthcheck probe.  Each checker is first shown a broken input, so a
# checker that accepts anything fails the test instead of passing it.
set -uo pipefail
src="${DB_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
daemon="${DB_DAEMON:-}"
cd "$src" || exit 1
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
passed=0 failed=0 skipped=0
ok() { echo "ok   $*"; passed=$((passed + 1)); }
bad() { echo "FAIL $*"; failed=$((failed + 1)); }
# On a CI machine (CI=true) every tool this test needs can be installed, so a missing one is a
# broken CI image, not a reason to pass quietly.
if [ "${CI:-}" = true ]; then
  skip() { echo "FAIL (CI=true: a check cannot be skipped) $*"; failed=$((failed + 1)); }
else
  skip() { echo "SKIP $*"; skipped=$((skipped + 1)); }
fi

# ---- docker-compose.yml ----
if ! command -v docker-compose >/dev/null && [ "$(id -u)" = 0 ]; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose; } >/dev/null 2>&1
fi
if command -v docker-compose >/dev/null; then
  printf 'services:\n  app:\n    image: x\n    bogus_key: 1\n' >"$work/bad-compose.yml"
  if docker-compose -f "$work/bad-compose.yml" config -q >/dev/null 2>&1; then
    bad "docker-compose config accepted an invalid file; it checks nothing"
  elif ! docker-compose -f docker-compose.yml --env-file .env.example config -q; then
    bad "docker-compose config -q docker-compose.yml"
  else
    docker-compose -f docker-compose.yml --env-file .env.example config >"$work/compose.yml" 2>/dev/null
    if python3 - "$work/compose.yml" <<'PY'
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))["services"]
errs = []
r = " ".join(c["redis"]["command"])
if "--appendonly yes" not in r or "--appendfsync everysec" not in r:
    errs.append("redis must run with --appendonly yes --appendfsync everysec: " + r)
def is_data_volume(v):  # short "name:/data:rw" (compose 1.x output) or long syntax
    if isinstance(v, str):
        parts = v.split(":")
        return len(parts) >= 2 and parts[1] == "/data" and not parts[0].startswith((".", "/"))
    return v.get("target") == "/data" and v.get("type") == "volume"
if not any(is_data_volume(v) for v in c["redis"].get("volumes", [])):
    errs.append("redis /data must be a named volume")
if c["redis"].get("ports"):
    errs.append("redis must not publish a port")
g = c["deskbridge"]
for p in g.get("ports", []):
    if (p.get("host_ip") if isinstance(p, dict) else p.split(":")[0]) != "127.0.0.1":
        errs.append(f"deskbridge port published beyond loopback: {p}")
if g.get("read_only") is not True: errs.append("deskbridge must have read_only: true")
if "ALL" not in g.get("cap_drop", []): errs.append("deskbridge must drop ALL capabilities")
if g.get("build", {}).get("dockerfile") != "deploy/Dockerfile": errs.append("deskbridge must build deploy/Dockerfile")
env = g.get("environment", {})
for k in ("DESKBRIDGE_REDIS_URL", "TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET"):
    if k not in env: errs.append(f"deskbridge environment lacks {k}")
if "XREADGROUP" not in " ".join(c["demo-consumer"].get("entrypoint", [])):
    errs.append("demo-consumer does not read the stream")
for e in errs: print("   ", e)
sys.exit(1 if errs else 0)
PY
    then ok "docker-compose.yml: valid, AOF everysec on a volume, loopback port, hardened gateway, demo consumer"
    else bad "docker-compose.yml rules"
    fi
    # The chatwoot profile: the bridge's gateway, as hardened as the quickstart one, on
    # Chatwoot's network (profiles keep it out of a plain "up").
    if docker-compose -f docker-compose.yml -f docker-compose.chatwoot.yml --env-file .env.example --profile chatwoot config \
         >"$work/compose-cw.yml" 2>/dev/null && python3 - "$work/compose-cw.yml" <<'PY'
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))["services"]
errs = []
g = c.get("deskbridge-chatwoot")
if not g: errs.append("no deskbridge-chatwoot service in the chatwoot profile")
else:
    if "chatwoot" not in g.get("profiles", []): errs.append("deskbridge-chatwoot is not in profile chatwoot")
    for p in g.get("ports", []):
        if (p.get("host_ip") if isinstance(p, dict) else p.split(":")[0]) != "127.0.0.1":
            errs.append(f"deskbridge-chatwoot port published beyond loopback: {p}")
    if g.get("read_only") is not True: errs.append("deskbridge-chatwoot must have read_only: true")
    if "ALL" not in g.get("cap_drop", []): errs.append("deskbridge-chatwoot must drop ALL capabilities")
    if "chatwoot" not in g.get("networks", {}): errs.append("deskbridge-chatwoot is not on Chatwoot's network")
    if "--config" not in g.get("command", []): errs.append("deskbridge-chatwoot runs without its configuration")
for e in errs: print("   ", e)
sys.exit(1 if errs else 0)
PY
    then ok "docker-compose.chatwoot.yml profile chatwoot: valid, hardened gateway on Chatwoot's network, loopback port"
    else bad "docker-compose.chatwoot.yml profile chatwoot"
    fi
  fi
else
  skip "docker-compose not installed and cannot be installed (not root): compose file unchecked"
fi

# ---- Kubernetes ----
here="$src/tests/deploy"
if [ ! -d "$here/node_modules/kubernetes-models" ]; then
  npm ci --prefix "$here" --no-audit --no-fund >"$work/npm.log" 2>&1 || { cat "$work/npm.log"; }
fi
if [ -d "$here/node_modules/kubernetes-models" ]; then
  cat >"$work/bad-k8s.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata: {name: broken}
spec:
  replicas: "two"
  selector: {matchLabels: {app: x}}
  template:
    metadata: {labels: {app: x}}
    spec:
      containers:
        - name: x
          image: x
          ports: [{containerPort: "http"}]
YAML
  if node "$here/validate_k8s.mjs" "$work/bad-k8s.yaml" >"$work/bad-k8s.out" 2>&1; then
    bad "validate_k8s.mjs accepted a broken Deployment; it checks nothing"
  elif ! grep -q 'replicas must be integer' "$work/bad-k8s.out" || ! grep -q 'readOnlyRootFilesystem' "$work/bad-k8s.out"; then
    cat "$work/bad-k8s.out"; bad "validate_k8s.mjs did not name the schema and policy errors"
  elif node "$here/validate_k8s.mjs" deploy/k8s/*.yaml >"$work/k8s.out" 2>&1; then
    ok "deploy/k8s/*.yaml: Kubernetes 1.27 schemas and deployment rules ($(tail -1 "$work/k8s.out"))"
  else
    cat "$work/k8s.out"; bad "deploy/k8s/*.yaml"
  fi
else
  bad "npm ci of tests/deploy failed: cannot validate the Kubernetes manifests"
fi
if command -v kubectl >/dev/null; then
  # kustomize renders locally; no cluster (kubectl would try localhost:8080) is involved.
  if kubectl kustomize deploy/k8s >"$work/rendered.yaml" 2>"$work/kustomize.err"; then
    if [ -d "$here/node_modules/kubernetes-models" ] &&
       ! node "$here/validate_k8s.mjs" --external-secret deskbridge-secrets - <"$work/rendered.yaml" >"$work/rendered.out" 2>&1; then
      cat "$work/rendered.out"; bad "kubectl kustomize output does not validate"
    elif grep -q '^kind: Secret$' "$work/rendered.yaml"; then
      bad "kustomize output contains a Secret: applying it would overwrite real credentials with placeholders"
    elif [ "$(grep -c '^  namespace: deskbridge$' "$work/rendered.yaml")" -lt 7 ]; then
      bad "kustomize did not put the objects in namespace deskbridge"
    else
      ok "kubectl kustomize deploy/k8s: $(grep -c '^kind:' "$work/rendered.yaml") objects render and validate"
    fi
  else
    cat "$work/kustomize.err"; bad "kubectl kustomize deploy/k8s"
  fi
else
  skip "kubectl not installed: kustomization.yaml not rendered"
fi

# The ConfigMap's files must work with the programs that read them: deskbridge.conf with the
# daemon (secrets from the example Secret), redis.conf with redis-server.
if [ -n "$daemon" ] && [ -x "$daemon" ] && python3 -c 'import yaml' 2>/dev/null; then
  python3 - "$work/cm" <<'PY'
import os, sys, yaml
out = sys.argv[1]
os.makedirs(out + "/secrets")
cm = yaml.safe_load(open("deploy/k8s/configmap.yaml"))
sec = yaml.safe_load(open("deploy/k8s/secret.example.yaml"))
for k, v in sec["stringData"].items():
    open(f"{out}/secrets/{k}", "w").write(v + "\n")
conf = cm["data"]["deskbridge.conf"].replace("/run/secrets/deskbridge/", out + "/secrets/")
open(out + "/deskbridge.conf", "w").write(conf)
open(out + "/broken.conf", "w").write(conf.replace("workers = 1", "workers = 100"))
for d in yaml.safe_load_all(open("deploy/k8s/redis.yaml")):
    if d["kind"] == "ConfigMap":
        open(out + "/redis.conf", "w").write(d["data"]["redis.conf"].replace("dir /data", f"dir {out}"))
PY
  if env -i PATH="$PATH" "$daemon" check-config "$work/cm/broken.conf" >/dev/null 2>&1; then
    bad "deskbridge check-config accepted workers = 100; it checks nothing"
  elif out=$(env -i PATH="$PATH" "$daemon" check-config "$work/cm/deskbridge.conf" 2>&1); then
    ok "deploy/k8s/configmap.yaml: deskbridge.conf passes check-config with the example Secret ($out)"
  else
    echo "$out"; bad "deploy/k8s/configmap.yaml: deskbridge check-config"
  fi
  if command -v redis-server >/dev/null; then
    redis-server "$work/cm/redis.conf" --port 0 --unixsocket "$work/cm/redis.sock" >"$work/cm/redis.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 50); do redis-cli -s "$work/cm/redis.sock" ping >/dev/null 2>&1 && break; sleep 0.1; done
    aof=$(redis-cli -s "$work/cm/redis.sock" CONFIG GET appendonly 2>/dev/null | tail -1)
    fsync=$(redis-cli -s "$work/cm/redis.sock" CONFIG GET appendfsync 2>/dev/null | tail -1)
    evict=$(redis-cli -s "$work/cm/redis.sock" CONFIG GET maxmemory-policy 2>/dev/null | tail -1)
    if [ "$aof/$fsync/$evict" = "yes/everysec/noeviction" ]; then
      ok "deploy/k8s/redis.yaml: redis-server runs its redis.conf with AOF everysec and noeviction"
    else
      tail -3 "$work/cm/redis.log"; bad "deploy/k8s/redis.yaml redis.conf: got appendonly=$aof appendfsync=$fsync policy=$evict"
    fi
  fi
else
  skip "no built daemon (DB_DAEMON) or python3-yaml: ConfigMap contents not run"
fi

# ---- systemd ----
unit=deploy/systemd/deskbridge.service
if command -v systemd-analyze >/dev/null; then
  # verify wants an existing ExecStart binary: point it at the one just built.
  exe="${daemon:-/bin/true}"
  sed "s#/usr/local/bin/deskbridge#$exe#" "$unit" >"$work/deskbridge.service"
  printf '[Service]\nExecStart=/bin/true\nProtectSystem=sometimes\n' >"$work/broken.service"
  # verify exits 0 on unknown keys and bad values, but it prints them: any output is a failure.
  if [ -z "$(systemd-analyze verify "$work/broken.service" 2>&1)" ]; then
    bad "systemd-analyze verify is silent on a broken unit; it checks nothing"
  else
    out=$(systemd-analyze verify "$work/deskbridge.service" 2>&1); rc=$?
    if [ $rc -ne 0 ] || [ -n "$out" ]; then
      echo "$out"; bad "systemd-analyze verify $unit"
    else
      exposure=$(systemd-analyze security --offline=yes "$work/deskbridge.service" 2>/dev/null |
        sed -n 's/.*Overall exposure level for deskbridge.service: \([0-9.]*\).*/\1/p')
      if [ -z "$exposure" ]; then
        ok "systemd-analyze verify $unit (this systemd has no offline security scoring)"
      elif awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }'; then
        ok "systemd-analyze verify $unit; offline security exposure $exposure (<= 2.0)"
      else
        bad "$unit: systemd-analyze security exposure $exposure, expected <= 2.0"
      fi
    fi
  fi
else
  echo "NOTE systemd-analyze not available: $unit gets a grep-level check only"
  miss=""
  for k in '^ExecStart=/usr/local/bin/deskbridge' '^ExecReload=' '^NoNewPrivileges=yes' '^ProtectSystem=strict' \
           '^DynamicUser=yes' '^CapabilityBoundingSet=$' '^RestrictAddressFamilies=' '^SystemCallFilter=' \
           '^LoadCredential=' '^WantedBy=multi-user.target'; do
    grep -q "$k" "$unit" || miss="$miss $k"
  done
  if [ -z "$miss" ]; then ok "$unit has the required keys (grep only)"; else bad "$unit lacks:$miss"; fi
fi

# ---- Prometheus ----
prom=deploy/prometheus
if command -v promtool >/dev/null; then
  printf 'groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: rate(foo[5m] > 1\n' >"$work/bad-rules.yml"
  if promtool check rules "$work/bad-rules.yml" >/dev/null 2>&1; then
    bad "promtool check rules accepted a broken rule"
  elif promtool check rules "$prom/alerts.yml" >"$work/prom.out" 2>&1 &&
       promtool test rules "$prom/alerts.test.yml" >>"$work/prom.out" 2>&1 &&
       promtool check config "$prom/prometheus.yml" >>"$work/prom.out" 2>&1; then
    ok "promtool: alerts.yml checks, its unit tests (alerts.test.yml) pass, prometheus.yml is valid"
  else
    cat "$work/prom.out"; bad "promtool on $prom"
  fi
  # Debian's promtool is built without Kubernetes discovery; then only the YAML is checked.
  if out=$(promtool check config "$prom/prometheus-kubernetes.yml" 2>&1); then
    ok "promtool check config prometheus-kubernetes.yml"
  elif grep -q 'kubernetes_sd_configs not found' <<<"$out" &&
       python3 -c 'import sys,yaml; c=yaml.safe_load(open(sys.argv[1])); assert c["scrape_configs"][0]["kubernetes_sd_configs"]' "$prom/prometheus-kubernetes.yml"; then
    ok "prometheus-kubernetes.yml: YAML only (this promtool has no Kubernetes discovery)"
  else
    echo "$out"; bad "promtool check config prometheus-kubernetes.yml"
  fi
else
  skip "promtool not installed (Debian package prometheus): alert rules unchecked"
fi

# ---- Dockerfile and its healthcheck probe ----
df=deploy/Dockerfile
miss=""
grep -q '^FROM debian:bookworm-slim AS build' "$df" || miss="$miss build-stage"
[ "$(grep -c '^FROM debian:bookworm-slim' "$df")" = 2 ] || miss="$miss two-stages"
grep -Eq '^USER [1-9][0-9]*:[1-9][0-9]*' "$df" || miss="$miss numeric-non-root-USER"
grep -A1 '^HEALTHCHECK ' "$df" | grep -q 'CMD .*deskbridge-healthcheck' || miss="$miss HEALTHCHECK"
grep -q '^\*$' .dockerignore && grep -q '^!src$' .dockerignore || miss="$miss .dockerignore"
for f in $(awk '/^COPY / && !/--from/ {for (i = 2; i < NF; i++) print $i}' "$df"); do
  [ -e "$f" ] || miss="$miss missing:$f"
  grep -qx "!${f%/}" .dockerignore || grep -qx "!${f%/}" .dockerignore || miss="$miss ignored:$f"
done
if [ -z "$miss" ]; then ok "$df: two bookworm-slim stages, numeric non-root user, healthcheck, context files not ignored"
else bad "$df:$miss"; fi

probe=deploy/healthcheck.sh
if [ -n "$daemon" ] && [ -x "$daemon" ] && command -v redis-server >/dev/null; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  closed=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  redis-server --port 0 --unixsocket "$work/redis.sock" --save "" --appendonly no --dir "$work" >/dev/null 2>&1 &
  pids+=($!)
  env -i PATH="$PATH" DESKBRIDGE_REDIS_URL="unix://$work/redis.sock" DESKBRIDGE_LISTEN="127.0.0.1:$port" \
    "$daemon" >"$work/gateway.log" 2>&1 &
  pids+=($!)
  up=""
  for _ in $(seq 100); do DESKBRIDGE_LISTEN="127.0.0.1:$port" bash "$probe" 2>/dev/null && { up=1; break; }; sleep 0.1; done
  ready=""
  for _ in $(seq 50); do bash "$probe" /readyz "$port" && { ready=1; break; }; sleep 0.1; done
  if [ -z "$up" ]; then
    tail -5 "$work/gateway.log"; bad "$probe never passed against a running gateway"
  elif [ -z "$ready" ]; then tail -5 "$work/gateway.log"; bad "$probe /readyz never passed with Redis up"
  elif bash "$probe" /no-such-path "$port"; then bad "$probe passed on a 404"
  elif bash "$probe" /healthz "$closed" 2>/dev/null; then bad "$probe passed on a closed port"
  else ok "$probe: 200 on /healthz and /readyz of the real daemon, fails on 404 and on a closed port"
  fi
else
  skip "no built daemon (DB_DAEMON) or redis-server: healthcheck probe not run"
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
