// Offline checks of Kubernetes manifests: the JSON schemas bundled in kubernetes-models
// (Kubernetes 1.27) plus deskbridge's own deployment rules, which a schema cannot express.
// Usage: node validate_k8s.mjs [--external-secret NAME]... FILE...
//   "-" reads stdin (e.g. kubectl kustomize output); --external-secret names a Secret that is
//   created outside these files, so references to it need no object in the set.
// Exit 0 when every object passes, 1 otherwise; one line per object either way.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

const problems = [];
const objects = [];

function load(file) {
  const text = readFileSync(file === "-" ? 0 : file, "utf8");
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length) {
      problems.push(`${file}: YAML: ${doc.errors[0].message}`);
      continue;
    }
    const obj = doc.toJS();
    if (obj) objects.push({ file, obj });
  }
}

async function schemaCheck({ file, obj }) {
  const where = `${file} ${obj.kind}/${obj.metadata?.name}`;
  // Kustomize's own file is not a cluster object; kubectl kustomize checks it.
  if (obj.kind === "Kustomization") return;
  if (typeof obj.apiVersion !== "string" || typeof obj.kind !== "string") {
    problems.push(`${where}: apiVersion and kind are required`);
    return;
  }
  const [group, version] = obj.apiVersion.includes("/")
    ? obj.apiVersion.split("/")
    : [null, obj.apiVersion];
  const mod = group ? `kubernetes-models/${group}/${version}` : `kubernetes-models/${version}`;
  try {
    const Cls = (await import(mod))[obj.kind];
    if (!Cls) throw new Error(`unknown kind ${obj.kind} in ${obj.apiVersion}`);
    new Cls(obj).validate();
    console.log(`ok   ${where}`);
  } catch (e) {
    problems.push(`${where}: ${String(e.message).slice(0, 500)}`);
  }
}

const podSpecOf = (obj) =>
  ["Deployment", "StatefulSet", "DaemonSet", "Job"].includes(obj.kind) ? obj.spec?.template?.spec : null;

function matches(selector, labels) {
  return Object.entries(selector ?? {}).every(([k, v]) => labels?.[k] === v);
}

// Rules from docs/deployment.md: non-root, read-only root, no capabilities, bounded memory,
// and the gateway's probes on the endpoints it really serves.
function policyCheck({ file, obj }) {
  const spec = podSpecOf(obj);
  if (!spec) return;
  const where = `${file} ${obj.kind}/${obj.metadata?.name}`;
  const podSec = spec.securityContext ?? {};
  for (const c of spec.containers ?? []) {
    const sec = c.securityContext ?? {};
    const at = `${where} container ${c.name}`;
    if (!(sec.runAsNonRoot ?? podSec.runAsNonRoot)) problems.push(`${at}: runAsNonRoot is not set`);
    if (sec.readOnlyRootFilesystem !== true) problems.push(`${at}: readOnlyRootFilesystem is not true`);
    if (sec.allowPrivilegeEscalation !== false) problems.push(`${at}: allowPrivilegeEscalation is not false`);
    if (!(sec.capabilities?.drop ?? []).includes("ALL")) problems.push(`${at}: capabilities do not drop ALL`);
    if (!c.resources?.requests?.cpu || !c.resources?.limits?.memory)
      problems.push(`${at}: needs a cpu request and a memory limit`);
    if (!c.readinessProbe || !c.livenessProbe) problems.push(`${at}: needs readiness and liveness probes`);
    const mounted = new Set((c.volumeMounts ?? []).map((m) => m.name));
    const declared = new Set((spec.volumes ?? []).map((v) => v.name));
    for (const t of obj.spec?.volumeClaimTemplates ?? []) declared.add(t.metadata?.name);
    for (const m of mounted) if (!declared.has(m)) problems.push(`${at}: mounts undeclared volume ${m}`);
  }
  if (obj.kind === "Deployment" && obj.metadata?.name === "deskbridge") {
    const c = (spec.containers ?? []).find((x) => x.name === "deskbridge");
    if (!c) problems.push(`${where}: no container named deskbridge`);
    else {
      if (c.readinessProbe?.httpGet?.path !== "/readyz") problems.push(`${where}: readiness must GET /readyz`);
      if (c.livenessProbe?.httpGet?.path !== "/healthz") problems.push(`${where}: liveness must GET /healthz`);
    }
    if (!matches(obj.spec?.selector?.matchLabels, obj.spec?.template?.metadata?.labels))
      problems.push(`${where}: selector does not match the pod labels`);
  }
}

// Objects that point at others must point at something in the same set.
function crossCheck() {
  const by = (kind) => objects.filter((o) => o.obj.kind === kind).map((o) => o.obj);
  const workloads = [...by("Deployment"), ...by("StatefulSet")];
  const podLabels = workloads.map((w) => w.spec?.template?.metadata?.labels ?? {});
  const names = (kind) => new Set(by(kind).map((o) => o.metadata?.name));
  for (const svc of by("Service"))
    if (!podLabels.some((l) => matches(svc.spec?.selector, l)))
      problems.push(`Service/${svc.metadata?.name}: selector matches no pod template`);
  for (const pdb of by("PodDisruptionBudget"))
    if (!podLabels.some((l) => matches(pdb.spec?.selector?.matchLabels, l)))
      problems.push(`PodDisruptionBudget/${pdb.metadata?.name}: selector matches no pod template`);
  for (const hpa of by("HorizontalPodAutoscaler")) {
    const ref = hpa.spec?.scaleTargetRef ?? {};
    if (!names(ref.kind).has(ref.name))
      problems.push(`HorizontalPodAutoscaler/${hpa.metadata?.name}: target ${ref.kind}/${ref.name} not found`);
  }
  const configMaps = names("ConfigMap"), secrets = names("Secret");
  for (const s of externalSecrets) secrets.add(s);
  for (const w of workloads) {
    const spec = w.spec?.template?.spec ?? {};
    for (const c of spec.containers ?? [])
      for (const e of c.env ?? []) {
        const ref = e.valueFrom?.secretKeyRef;
        if (ref && !secrets.has(ref.name))
          problems.push(`${w.kind}/${w.metadata?.name}: env ${e.name} needs Secret ${ref.name}`);
      }
    for (const v of spec.volumes ?? []) {
      if (v.configMap && !configMaps.has(v.configMap.name))
        problems.push(`${w.kind}/${w.metadata?.name}: volume ${v.name} needs ConfigMap ${v.configMap.name}`);
      if (v.secret && !secrets.has(v.secret.secretName))
        problems.push(`${w.kind}/${w.metadata?.name}: volume ${v.name} needs Secret ${v.secret.secretName}`);
    }
  }
}

const externalSecrets = [];
const files = [];
for (let args = process.argv.slice(2); args.length; ) {
  const a = args.shift();
  if (a === "--external-secret") externalSecrets.push(args.shift());
  else files.push(a);
}
if (!files.length) {
  console.error("usage: node validate_k8s.mjs FILE... (- for stdin)");
  process.exit(2);
}
for (const f of files) load(f);
for (const o of objects) await schemaCheck(o);
for (const o of objects) policyCheck(o);
crossCheck();
for (const p of problems) console.log(`FAIL ${p}`);
console.log(`${objects.length} objects, ${problems.length} problems`);
process.exit(problems.length ? 1 : 0);
