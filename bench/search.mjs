// bench/search.mjs - driven by bench/search.sh (see there).
import http from 'node:http';
import { execFileSync } from 'node:child_process';

const PORT = Number(process.env.GW_PORT), TOKEN = process.env.API_TOKEN, BOT = process.env.BOT_ID;
const SECRET = process.env.SECRET, SOCK = process.env.REDIS_SOCK;
const CONVS = Number(process.env.BENCH_SEARCH_CONVERSATIONS || 10000);
const MESSAGES = Number(process.env.BENCH_SEARCH_MESSAGES || 100000);
const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function request(method, path, headers, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: PORT, method, path, headers, agent }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { data += c; });
      res.on('end', () => resolve({ status: res.statusCode, body: data, headers: res.headers }));
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

// A fixed pseudo-random sequence, so every run writes the same data.
let seed = 42;
const rnd = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
const FIRST = ['Taras', 'Olena', 'Ivan', 'Mariia', 'Andrii', 'Oksana', 'Petro', 'Iryna', 'Anna', 'John',
  'Maria', 'Omar', 'Fatima', 'Piotr', 'Agnieszka', 'Dmytro', 'Sofiia', 'Yusuf', 'Lena', 'Mark'];
const LAST = ['Shevchenko', 'Kovalenko', 'Bondarenko', 'Tkachenko', 'Kravchenko', 'Smith', 'Nowak',
  'Kowalski', 'Melnyk', 'Boyko', 'Hassan', 'Lysenko', 'Marchenko', 'Rudenko', 'Savchenko'];
const BASE = ['order', 'delivery', 'parcel', 'refund', 'payment', 'card', 'address', 'today', 'tomorrow',
  'замовлення', 'доставка', 'посилка', 'оплата', 'адреса', 'дякую', 'привіт', 'коли', 'де', 'where',
  'when', 'please', 'help', 'thanks', 'hello', 'problem', 'broken', 'size', 'colour', 'exchange'];
// 2000 words: the base ones frequent, generated ones rarer and rarer (Zipf-like).
const VOCAB = BASE.concat(Array.from({ length: 2000 - BASE.length }, (_, i) => 'w' + i.toString(36) + 'x'));
const word = () => VOCAB[Math.floor(VOCAB.length * Math.pow(rnd(), 3))];

async function load() {
  const names = [];
  for (let c = 0; c < CONVS; c++) names.push(`${FIRST[c % FIRST.length]} ${LAST[Math.floor(c / FIRST.length) % LAST.length]}${c}`);
  const per = MESSAGES / CONVS;
  let next = 0, sent = 0;
  const t0 = performance.now();
  async function worker() {
    for (;;) {
      const m = next++;
      if (m >= MESSAGES) return;
      const c = m % CONVS, chat = 500000 + c;
      const text = Array.from({ length: 4 + Math.floor(rnd() * 8) }, word).join(' ');
      const body = JSON.stringify({ update_id: m + 1, message: { message_id: m + 1, date: 1795365000,
        chat: { id: chat, type: 'private', first_name: names[c] },
        from: { id: chat, is_bot: false, first_name: names[c] }, text } });
      const r = await request('POST', `/webhooks/telegram/${BOT}`,
        { 'Content-Type': 'application/json', 'X-Telegram-Bot-Api-Secret-Token': SECRET }, body);
      if (r.status !== 200) throw new Error('webhook ' + r.status);
      sent++;
    }
  }
  await Promise.all(Array.from({ length: 16 }, worker));
  console.log(`wrote ${sent} messages of ${CONVS} conversations (${per} each) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

function lag() {
  const out = execFileSync('redis-cli', ['-s', SOCK, 'XINFO', 'GROUPS', `deskbridge:events`], { encoding: 'utf8' });
  const lines = out.split('\n');
  let group = null, res = {};
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] === 'name') group = lines[i + 1];
    if (group && (lines[i] === 'lag' || lines[i] === 'pending')) res[group + ':' + lines[i]] = Number(lines[i + 1]);
  }
  return res;
}

async function main() {
  await load();
  const t0 = performance.now();
  for (;;) {
    const l = lag();
    if (l['deskbridge-search:lag'] === 0 && l['deskbridge-search:pending'] === 0 &&
        l['deskbridge-dispatch:lag'] === 0 && l['deskbridge-dispatch:pending'] === 0) break;
    if (performance.now() - t0 > 600000) throw new Error('the index did not catch up: ' + JSON.stringify(l));
    await sleep(500);
  }
  console.log(`index and dispatcher caught up ${((performance.now() - t0) / 1000).toFixed(1)} s after the last webhook`);
  const keys = execFileSync('redis-cli', ['-s', SOCK, 'EVAL', "return #redis.call('KEYS', ARGV[1])", '0', 'deskbridge:search:*'], { encoding: 'utf8' }).trim();
  const mem = /used_memory_human:(\S+)/.exec(execFileSync('redis-cli', ['-s', SOCK, 'INFO', 'memory'], { encoding: 'utf8' }))[1];
  console.log(`index: ${keys} word sets; Redis memory in all ${mem}`);

  const api = (m, p, b) => request(m, p, { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' }, JSON.stringify(b));
  await api('PUT', '/v1/agents/sup', { name: 'Supervisor' });
  await api('PUT', '/v1/console/agents/sup/secret', { secret: 'bench-supervisor-secret', role: 'supervisor' });
  const si = await request('POST', '/console/api/signin', { 'Content-Type': 'application/json', Origin: `http://127.0.0.1:${PORT}`, Host: `127.0.0.1:${PORT}` },
    JSON.stringify({ agent: 'sup', secret: 'bench-supervisor-secret' }));
  const cookie = /db_session=[0-9a-f]+/.exec(si.headers['set-cookie'][0])[0];
  const kinds = {
    'name beginning': () => FIRST[Math.floor(rnd() * FIRST.length)].slice(0, 3),
    'whole name': () => `${FIRST[Math.floor(rnd() * FIRST.length)]} ${LAST[Math.floor(rnd() * LAST.length)]}`,
    'rare word': () => VOCAB[1000 + Math.floor(rnd() * 999)],
    'common word': () => BASE[Math.floor(rnd() * BASE.length)],
    'two words': () => `${BASE[Math.floor(rnd() * BASE.length)]} ${BASE[Math.floor(rnd() * BASE.length)]}`,
    'chat id': () => String(500000 + Math.floor(rnd() * CONVS)),
  };
  console.log(`GET /console/api/search (50 results at most), 200 queries of each kind, one at a time:`);
  for (const [kind, gen] of Object.entries(kinds)) {
    const times = [];
    let hits = 0;
    for (let i = 0; i < 200; i++) {
      const q = gen();
      const s = performance.now();
      const r = await request('GET', `/console/api/search?q=${encodeURIComponent(q)}`, { Cookie: cookie });
      times.push(performance.now() - s);
      if (r.status !== 200) throw new Error('search ' + r.status);
      hits += JSON.parse(r.body).conversations.length;
    }
    times.sort((a, b) => a - b);
    const p = (q) => times[Math.min(times.length - 1, Math.ceil(q * times.length) - 1)].toFixed(1);
    console.log(`  ${kind.padEnd(15)} p50 ${p(0.5)} ms, p90 ${p(0.9)} ms, p99 ${p(0.99)} ms, max ${times[times.length - 1].toFixed(1)} ms; ${(hits / 200).toFixed(1)} hits a query`);
  }
}

main().then(() => process.exit(0)).catch((e) => { console.error('search:', e.message); process.exit(1); });
