// s3server.mjs - an S3-compatible server for the media store tests: s3rver (pinned in
// package-lock.json) on 127.0.0.1:<port> keeping its objects in <dir>, with the bucket
// <bucket> made at the start.  Prints "listening <port>" once it serves.
//
// s3rver checks the access key but not AWS Signature V4 itself, so this file puts a check of
// its own in front: every request must carry an Authorization header whose AWS4-HMAC-SHA256
// signature, computed here from the request and the secret (S3RVER, s3rver's fixed pair),
// matches, and a PUT's x-amz-content-sha256 must be the hash of the body that arrived.
// Anything else is answered 403 SignatureDoesNotMatch, so a gateway that did not sign (or
// signed wrongly) cannot store a file.  Rejections are counted in <dir>/rejected.
import { createHash, createHmac } from "node:crypto";
import { appendFileSync } from "node:fs";
import S3rver from "s3rver";

const [port, dir, bucket] = process.argv.slice(2);
const SECRET = "S3RVER";

const hmac = (key, s) => createHmac("sha256", key).update(s).digest();
const sha256 = (b) => createHash("sha256").update(b).digest("hex");

function expectedSignature(req, auth, body) {
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(auth || "");
  if (!m) return null;
  const [, , date, region, signed, given] = m;
  const names = signed.split(";");
  if (!names.includes("host") || !names.includes("x-amz-date") || !names.includes("x-amz-content-sha256")) return null;
  const payload = req.headers["x-amz-content-sha256"];
  if (body !== null && payload !== sha256(body)) return null;
  const [path, query = ""] = req.url.split("?");
  const canonicalQuery = query
    .split("&").filter(Boolean).sort().join("&");
  const canonicalHeaders = names.map((n) => `${n}:${String(req.headers[n] ?? "").trim()}\n`).join("");
  const canonical = [req.method, path, canonicalQuery, canonicalHeaders, signed, payload].join("\n");
  const scope = `${date}/${region}/s3/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", req.headers["x-amz-date"], scope, sha256(canonical)].join("\n");
  const key = hmac(hmac(hmac(hmac(`AWS4${SECRET}`, date), region), "s3"), "aws4_request");
  return { given, want: hmac(key, toSign).toString("hex") };
}

const server = new S3rver({
  port: Number(port || 0),
  address: "127.0.0.1",
  directory: dir,
  silent: true,
  configureBuckets: [{ name: bucket || "media" }],
});

server.middleware.unshift(async (ctx, next) => {
  let body = null;
  if (ctx.method === "PUT") {
    // Read the body here to check its hash, then hand s3rver a stream of the same bytes.
    const chunks = [];
    for await (const c of ctx.req) chunks.push(c);
    body = Buffer.concat(chunks);
    const { Readable } = await import("node:stream");
    const replay = Readable.from([body]);
    replay.headers = ctx.req.headers;
    ctx.req.pipe = replay.pipe.bind(replay);
    ctx.req[Symbol.asyncIterator] = replay[Symbol.asyncIterator].bind(replay);
    ctx.req.on = replay.on.bind(replay);
    ctx.req.once = replay.once.bind(replay);
    ctx.req.read = replay.read.bind(replay);
    ctx.req.resume = replay.resume.bind(replay);
  }
  const sig = expectedSignature(ctx.req, ctx.get("authorization"), body);
  if (!sig || sig.given !== sig.want) {
    appendFileSync(`${dir}/rejected`, `${ctx.method} ${ctx.url}\n`);
    ctx.status = 403;
    ctx.type = "application/xml";
    ctx.body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SignatureDoesNotMatch</Code></Error>";
    return;
  }
  await next();
});

const { port: bound } = await server.run();
process.stdout.write(`listening ${bound}\n`);
process.on("SIGTERM", async () => {
  await server.close();
  process.exit(0);
});
