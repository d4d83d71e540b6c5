'use strict';
// Reference relay for bench/run.sh: the ingest work deskbridge does for a WhatsApp webhook,
// written the way a small Node.js service would be: verify X-Hub-Signature-256 over the raw
// body, parse, normalize each message to a small event, XADD it to Redis, and answer only
// after Redis acknowledged.  It does not deduplicate (deskbridge does, in the same Lua
// script as its XADD), so it does slightly less work than the gateway.
//
// env: PORT (0 = any; the chosen port is printed as "port N"), REDIS_SOCKET, APP_SECRET,
//      PHONE_NUMBER_ID, STREAM (default relay:events)
const crypto = require('node:crypto');
const Fastify = require('fastify');
const Redis = require('ioredis');

const secret = process.env.APP_SECRET || '';
const pnid = process.env.PHONE_NUMBER_ID || '';
const stream = process.env.STREAM || 'relay:events';
const redis = new Redis({ path: process.env.REDIS_SOCKET, enableOfflineQueue: true });
const app = Fastify({ logger: false, bodyLimit: 1 << 20 });

// The signature covers the bytes as sent, so the body must reach the handler unparsed.
app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
  done(null, body);
});

function verified(raw, header) {
  if (typeof header !== 'string' || !header.startsWith('sha256=')) return false;
  const got = Buffer.from(header.slice(7), 'hex');
  const want = crypto.createHmac('sha256', secret).update(raw).digest();
  return got.length === want.length && crypto.timingSafeEqual(got, want);
}

function events(doc, account) {
  const out = [];
  if (!doc || doc.object !== 'whatsapp_business_account' || !Array.isArray(doc.entry)) return null;
  for (const entry of doc.entry) {
    for (const change of entry.changes || []) {
      const v = change.value || {};
      if (change.field !== 'messages' || String(v.metadata?.phone_number_id) !== account) continue;
      const names = new Map((v.contacts || []).map((c) => [c.wa_id, c.profile?.name]));
      for (const m of v.messages || []) {
        out.push({
          v: 1,
          id: crypto.randomUUID(),
          kind: 'message',
          type: m.type,
          platform: 'whatsapp',
          account,
          conversation: `whatsapp:${account}:${m.from}`,
          external_chat_id: m.from,
          external_user_id: m.from,
          external_message_id: m.id,
          text: m.text?.body,
          timestamp: Number(m.timestamp),
          sender: { name: names.get(m.from) },
          received_at: Date.now(),
        });
      }
    }
  }
  return out;
}

app.post('/webhooks/whatsapp/:account', async (req, reply) => {
  if (!Buffer.isBuffer(req.body) || !verified(req.body, req.headers['x-hub-signature-256'])) {
    return reply.code(401).send({ error: { code: 'bad_signature' } });
  }
  let doc;
  try {
    doc = JSON.parse(req.body);
  } catch {
    return reply.code(400).send({ error: { code: 'bad_json' } });
  }
  const evs = events(doc, req.params.account === pnid ? pnid : '');
  if (!evs) return reply.code(400).send({ error: { code: 'bad_body' } });
  if (evs.length) {
    try {
      if (evs.length === 1) {
        await redis.xadd(stream, '*', 'event', JSON.stringify(evs[0]));
      } else {
        // All or nothing per webhook, as the gateway promises.
        const multi = redis.multi();
        for (const e of evs) multi.xadd(stream, '*', 'event', JSON.stringify(e));
        await multi.exec();
      }
    } catch {
      return reply.code(503).send({ error: { code: 'redis' } });
    }
  }
  return reply.code(200).send({ ok: true });
});

app.listen({ host: '127.0.0.1', port: Number(process.env.PORT || 0) }).then(() => {
  console.log(`port ${app.server.address().port}`);
});

for (const s of ['SIGTERM', 'SIGINT']) {
  process.on(s, () => {
    app.close().then(() => redis.quit()).finally(() => process.exit(0));
  });
}
