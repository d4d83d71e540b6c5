// s3server.mjs - an S3-compatible server for the media store tests: s3rver (pinned in
// package-lock.json) on 127.0.0.1:<port> keeping its objects in <dir>, with the bucket
// <bucket> made at the start.  Prints "listening <port>" once it serves.  Its credentials are
// s3rver's fixed pair, S3RVER / S3RVER; it checks the signature of every request.
import S3rver from "s3rver";

const [port, dir, bucket] = process.argv.slice(2);
const server = new S3rver({
  port: Number(port || 0),
  address: "127.0.0.1",
  directory: dir,
  silent: true,
  configureBuckets: [{ name: bucket || "media" }],
});
const { port: bound } = await server.run();
process.stdout.write(`listening ${bound}\n`);
process.on("SIGTERM", async () => {
  await server.close();
  process.exit(0);
});
