// bench/live_streams.mjs - driven by bench/live_streams.sh (see there).
import http from 'node:http';
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';

const PORT = Number(process.env.GW_PORT), PID = process.env.GW_PID, TOKEN = process.env.API_TOKEN;
const BOT = process.env.BOT_ID, SECRET = process.env.SECRET, SOCK = process.env.REDIS_SOCK;
const CLIENTS = Number(process.env.BENCH_LIVE_CLIENTS || 200);
const MESSAGES = Number(process.env.BENCH_LIVE_MESSAGES || 400);
const IDLE = Number(process.env.BENCH_IDLE_CLIENTS || 500);
const IDLE_S = Number(process.env.BENCH_IDLE_S || 10);
const agentHttp = new http.Agent({ keepAlive: true, maxSockets: 16 });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function request(method, path, headers, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: PORT, method, path, headers, agent: agentHttp }, (res) => {
      let data = '';
      res.on('data', (c) => { data += c; });
      res.on('end', () => resolve({ status: res.statusCode, body: data }));
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}
const api = (method, path, obj) => request(method, path, {
  Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' }, obj ? JSON.stringify(obj) : undefined);

/* One inbox stream on its own connection (the API's, or with a session cookie the console's);
 * onEvent(conversation, type) per event. */
function stream(agent, onEvent, cookie) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: PORT,
      path: cookie ? '/console/api/stream' : `/v1/agents/${agent}/stream?from=now`,
      headers: cookie ? { Cookie: cookie } : { Authorization: `Bearer ${TOKEN}` }, agent: false }, (res) => {
      if (res.statusCode !== 200) { reject(new Error('stream ' + res.statusCode)); return; }
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (c) => {
        buf += c;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const ev = /^event: (.*)$/m.exec(block), data = /^data: (.*)$/m.exec(block);
          if (ev && data) {
            try { onEvent(JSON.parse(data[1]).conversation, ev[1]); } catch (e) { /* a comment */ }
          }
        }
      });
      resolve(req);
    });
    req.on('error', reject);
    req.end();
  });
}

function cpuTicks() {
  const f = fs.readFileSync(`/proc/${PID}/stat`, 'utf8');
  const parts = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return Number(parts[11]) + Number(parts[12]); // utime + stime, in clock ticks
}
/* Commands Redis ran in all (scripts' inner commands included), and those of the live
 * streams themselves: the waker's XREAD, the streams' XRANGE, the kicks' XADD. */
function redisCommands() {
  const info = execFileSync('redis-cli', ['-s', SOCK, 'INFO', 'all'], { encoding: 'utf8' });
  const calls = (cmd) => { const m = new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(info); return m ? Number(m[1]) : 0; };
  return { total: Number(/total_commands_processed:(\d+)/.exec(info)[1]),
    live: calls('xread') + calls('xrange') + calls('xadd') };
}
function pct(sorted, q) { return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]; }

async function main() {
  const total = Math.max(CLIENTS, IDLE);
  for (let i = 0; i < total; i++) {
    const r = await api('PUT', `/v1/agents/a${i}`, { name: `Agent ${i}` });
    if (r.status !== 200) throw new Error('agent ' + r.status);
  }
  // ---- 1: latency with CLIENTS streams ----
  const seen = new Map(); // conversation -> time its message reached a stream
  const conns = [];
  for (let i = 0; i < CLIENTS; i++) {
    conns.push(await stream(`a${i}`, (conv, type) => { if (type === 'message' && !seen.has(conv)) seen.set(conv, performance.now()); }));
    await api('POST', `/v1/agents/a${i}/presence`, { presence: 'online' });
  }
  await sleep(500);
  const answered = new Map();
  for (let m = 0; m < MESSAGES; m++) {
    const chat = 100000 + m;
    const body = JSON.stringify({ update_id: m + 1, message: { message_id: m + 1, date: 1795365000,
      chat: { id: chat, type: 'private', first_name: 'C' }, from: { id: chat, is_bot: false, first_name: 'C' }, text: 'hello ' + m } });
    const r = await request('POST', `/webhooks/telegram/${BOT}`, {
      'Content-Type': 'application/json', 'X-Telegram-Bot-Api-Secret-Token': SECRET }, body);
    if (r.status !== 200) throw new Error('webhook ' + r.status);
    answered.set(`telegram:${BOT}:${chat}`, performance.now());
    await sleep(10);
  }
  await sleep(2000);
  const lat = [];
  let missing = 0;
  for (const [conv, t0] of answered) {
    const t1 = seen.get(conv);
    if (t1 === undefined) missing++;
    else lat.push(Math.max(0, t1 - t0));
  }
  lat.sort((a, b) => a - b);
  const f = (x) => x === undefined ? '-' : x.toFixed(1);
  console.log(`webhook answered -> assigned agent's stream, ${CLIENTS} streams connected, ${MESSAGES} messages:`);
  console.log(`  p50 ${f(pct(lat, 0.5))} ms, p90 ${f(pct(lat, 0.9))} ms, p99 ${f(pct(lat, 0.99))} ms, max ${f(lat[lat.length - 1])} ms, not delivered ${missing}`);
  for (const c of conns) c.destroy();
  await sleep(1000);

  // ---- 2: IDLE agents in the console, idle ----
  // Each agent gets a secret and signs in (two PBKDF2 hashes each, on the gateway's worker
  // thread), then opens the console's live stream with its session cookie.
  const cookies = [];
  for (let i = 0; i < IDLE; i++) {
    const r = await api('PUT', `/v1/console/agents/a${i}/secret`, { secret: `bench-secret-${i}-0123` });
    if (r.status !== 200) throw new Error('secret ' + r.status);
  }
  for (let i = 0; i < IDLE; i++) {
    const r = await new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: PORT, method: 'POST', path: '/console/api/signin',
        headers: { 'Content-Type': 'application/json', Origin: `http://127.0.0.1:${PORT}` }, agent: agentHttp }, (res) => {
        res.resume();
        res.on('end', () => resolve(res));
      });
      req.on('error', reject);
      req.end(JSON.stringify({ agent: `a${i}`, secret: `bench-secret-${i}-0123` }));
    });
    if (r.statusCode !== 200) throw new Error('signin ' + r.statusCode);
    cookies.push(/db_session=[0-9a-f]+/.exec(r.headers['set-cookie'][0])[0]);
  }
  const idle = [];
  for (let i = 0; i < IDLE; i++) idle.push(await stream(`a${i}`, () => {}, cookies[i]));
  await sleep(3000);
  const hz = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));
  const c0 = cpuTicks(), r0 = redisCommands(), t0 = performance.now();
  await sleep(IDLE_S * 1000);
  const c1 = cpuTicks(), r1 = redisCommands(), secs = (performance.now() - t0) / 1000;
  console.log(`${IDLE} agents signed in to the console, their live streams idle, over ${secs.toFixed(1)} s:`);
  console.log(`  gateway CPU ${(100 * (c1 - c0) / hz / secs).toFixed(2)} % of a core`);
  console.log(`  Redis: the live streams ${((r1.live - r0.live) / secs).toFixed(2)} commands/s (XREAD, XRANGE, XADD); everything ${((r1.total - r0.total - 1) / secs).toFixed(1)} commands/s, mostly the dispatcher's once-a-second sweep over ${IDLE} agents inside its script`);
  for (const c of idle) c.destroy();
}

main().then(() => process.exit(0)).catch((e) => { console.error('live_streams:', e.message); process.exit(1); });
