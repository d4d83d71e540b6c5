// The agent console end to end in headless Chromium: the scenarios 1-5.
//   1. sign in; a signed Telegram webhook's conversation appears live (no reload) within 1 s;
//      the agent opens it and sees the text and an image served through the media route;
//   2. a canned reply reaches the fake Telegram and its tick turns to sent; a WhatsApp reply's
//      tick turns to delivered and read live as the receipts arrive;
//   3. two agents of capacity 2 and five customers: each sees only its own and the queue;
//      closing one pulls the queued conversation into that agent's inbox, live;
//   4. hostile texts and names render as text (no dialog, no console error, literal DOM text);
//      cross-origin form posts change nothing; another tenant's conversation is 404;
//      sign-out ends the session;
//   5. screenshots of the inbox and a conversation;
//   6. a supervisor's team figures: its tenant's agents and accounts as the API answers them,
//      a hostile agent name as text, another tenant's absent; an agent gets none (403).
// Prints the webhook -> screen times it saw.  Exits non-zero on the first failure.
import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

const BUILD = process.env.DB_BUILD_DIR, SRC = process.env.DB_SOURCE_DIR, DAEMON = process.env.DB_DAEMON;
const shots = path.join(BUILD, 'browser');
fs.mkdirSync(shots, { recursive: true });
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'db-browser-'));
const children = [];
const ADMIN = 'operator-token-browser-0123456789';
const TOK = 'acme-token-browser-0123456789';
const TOK_G = 'globex-token-browser-0123456789';
const BOT = '7100000001', BOT_G = '7200000002', HOOK = 'acme-hook-secret_1', HOOK_G = 'globex-hook-secret_2';
const PNID = '15550001', APP_SECRET = 'wa-app-secret-browser', WA_TOKEN = 'EAAbrowserWaToken0123';
const PW = { ann: 'ann-console-secret-1', bob: 'bob-console-secret-2', sue: 'sue-supervises-acme-3' };

let failed = false;
function check(cond, what) {
  if (!cond) throw new Error('FAIL: ' + what);
  console.log('ok - ' + what);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

async function waitFor(fn, ms, what) {
  const until = Date.now() + ms;
  for (;;) {
    try { if (await fn()) return; } catch (e) { /* not yet */ }
    if (Date.now() > until) throw new Error('FAIL: timed out waiting for ' + what);
    await sleep(50);
  }
}

/* A fake platform: the tool prints its port, then answers one line per command. */
async function fake(name) {
  const p = spawn(path.join(BUILD, 'tools', 'fake_platform_server'), [], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(p);
  const lines = readline.createInterface({ input: p.stdout });
  const queue = [];
  let waiting = null;
  lines.on('line', (l) => { if (waiting) { const w = waiting; waiting = null; w(l); } else queue.push(l); });
  const next = () => new Promise((r) => { if (queue.length) r(queue.shift()); else waiting = r; });
  const port = Number((await next()).split(' ')[1]);
  const cmd = async (line) => { p.stdin.write(line + '\n'); return next(); };
  return { name, port, url: `http://127.0.0.1:${port}`, cmd };
}

async function api(port, token, method, p, body) {
  const r = await fetch(`http://127.0.0.1:${port}${p}`, {
    method, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch (e) { json = null; }
  return { status: r.status, json };
}

let update = 1000;
async function tgMessage(port, bot, secret, chat, name, extra) {
  update++;
  const msg = Object.assign({
    message_id: update, date: 1795365000,
    chat: { id: chat, type: 'private', first_name: name },
    from: { id: chat, is_bot: false, first_name: name, language_code: 'uk' },
  }, extra);
  const r = await fetch(`http://127.0.0.1:${port}/webhooks/telegram/${bot}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Telegram-Bot-Api-Secret-Token': secret },
    body: JSON.stringify({ update_id: update, message: msg }),
  });
  if (r.status !== 200) throw new Error('FAIL: webhook answered ' + r.status);
  return Date.now();
}

async function waPost(port, value) {
  const body = JSON.stringify({ object: 'whatsapp_business_account', entry: [{ id: '1020', changes: [{ field: 'messages', value: Object.assign({
    messaging_product: 'whatsapp', metadata: { display_phone_number: '15550783881', phone_number_id: PNID },
  }, value) }] }] });
  const sig = 'sha256=' + crypto.createHmac('sha256', APP_SECRET).update(body).digest('hex');
  const r = await fetch(`http://127.0.0.1:${port}/webhooks/whatsapp/${PNID}`, {
    method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Hub-Signature-256': sig }, body,
  });
  if (r.status !== 200) throw new Error('FAIL: WhatsApp webhook answered ' + r.status);
}

async function signIn(page, gw, agent) {
  await page.goto(`http://127.0.0.1:${gw}/console/`);
  await page.waitForSelector('#signin-form:not([hidden])');
  await page.fill('#signin-agent', agent);
  await page.fill('#signin-secret', PW[agent]);
  await page.click('#signin-form button[type=submit]');
  await page.waitForSelector('#app:not([hidden])');
  await page.waitForSelector('#live.on');
  await page.selectOption('#presence', 'online');
}

function listIds(page) {
  return page.$$eval('#list li[data-id]', (lis) => lis.map((li) => li.getAttribute('data-id')));
}

async function main() {
  const tg = await fake('telegram'), wa = await fake('whatsapp');
  await tg.cmd('rule * getFile -1 200 0 0 {"ok":true,"result":{"file_id":"pic1","file_path":"photos/pic1.svg"}}');
  await tg.cmd('rule GET /file/ -1 200 0 0 <svg xmlns="http://www.w3.org/2000/svg" width="120" height="80"><rect width="120" height="80" fill="#2a6bd1"/><circle cx="60" cy="40" r="25" fill="#ffd54f"/></svg>');
  await tg.cmd('header Content-Type image/svg+xml');
  await tg.cmd('default 200 {"ok":true,"result":{"message_id":{n}}}');
  await wa.cmd('default 200 {"messaging_product":"whatsapp","contacts":[{"input":"380501112233","wa_id":"380501112233"}],"messages":[{"id":"wamid.OUT{n}"}]}');

  const redis = spawn('redis-server', ['--port', '0', '--unixsocket', path.join(work, 'redis.sock'), '--save', '', '--appendonly', 'no', '--dir', work], { stdio: 'ignore' });
  children.push(redis);
  const gw = await freePort();
  const conf = path.join(work, 'deskbridge.conf');
  fs.writeFileSync(conf, [
    '[gateway]', `listen = 127.0.0.1:${gw}`, `api_token = ${ADMIN}`,
    '[dispatch]', 'offline_grace_ms = 0', 'sweep_ms = 100', 'default_capacity = 2',
    '[console]', 'password_iterations = 100000',
    `[telegram ${BOT}]`, `token = ${BOT}:AAacmeBotToken`, `webhook_secret = ${HOOK}`, `api_base = ${tg.url}`,
    `[telegram ${BOT_G}]`, `token = ${BOT_G}:AAglobexBotToken`, `webhook_secret = ${HOOK_G}`, `api_base = ${tg.url}`,
    `[whatsapp ${PNID}]`, `access_token = ${WA_TOKEN}`, `app_secret = ${APP_SECRET}`, 'verify_token = verify-browser',
    `phone_number_id = ${PNID}`, `api_base = ${wa.url}`,
    '[tenant acme]', `accounts = telegram:${BOT}, whatsapp:${PNID}`, `api_token = ${TOK}`,
    '[tenant globex]', `accounts = telegram:${BOT_G}`, `api_token = ${TOK_G}`,
    '[canned greeting]', 'text = Hello {customer_name}, how can I help?', 'tenant = acme',
    '',
  ].join('\n'));
  await waitFor(() => fs.existsSync(path.join(work, 'redis.sock')), 5000, 'redis');
  const log = fs.openSync(path.join(work, 'gateway.log'), 'w');
  const d = spawn(DAEMON, ['--config', conf], {
    env: { PATH: process.env.PATH, DESKBRIDGE_REDIS_URL: `unix://${path.join(work, 'redis.sock')}` },
    stdio: ['ignore', log, log],
  });
  children.push(d);
  await waitFor(async () => (await fetch(`http://127.0.0.1:${gw}/readyz`)).status === 200, 10000, 'the gateway');

  for (const a of ['ann', 'bob']) {
    check((await api(gw, TOK, 'PUT', `/v1/agents/${a}`, { name: a === 'ann' ? 'Ann Kovalenko' : 'Bob Marsh', capacity: 2 })).status === 200, `agent ${a} made`);
    check((await api(gw, TOK, 'PUT', `/v1/console/agents/${a}/secret`, { secret: PW[a] })).status === 200, `${a}'s secret set`);
  }

  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM, args: ['--no-sandbox'] });
  const ctxA = await browser.newContext({ locale: 'en-US', viewport: { width: 1200, height: 760 } });
  const ann = await ctxA.newPage();
  const dialogs = [], errors = [];
  for (const p of [ann]) {
    p.on('dialog', (dlg) => { dialogs.push(dlg.message()); dlg.dismiss().catch(() => {}); });
    p.on('pageerror', (e) => errors.push('pageerror: ' + e.message));
    /* Console errors, CSP refusals among them; a 4xx answer the page handles is logged by
     * the browser as a failed resource and is not one. */
    p.on('console', (m) => { if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) errors.push('console: ' + m.text()); });
  }

  // ---- 1 ----
  await signIn(ann, gw, 'ann');
  check(true, 'ann signed in through the form; the live stream is open');
  await ann.evaluate(() => { window.__notReloaded = true; });
  const sentAt = await tgMessage(gw, BOT, HOOK, 501, 'Taras', { text: 'Доброго дня! Where is my order?' });
  await ann.waitForSelector(`#list li[data-id="telegram:${BOT}:501"]`, { timeout: 3000 });
  const shownMs = Date.now() - sentAt;
  console.log(`# webhook answered -> conversation in the inbox: ${shownMs} ms`);
  check(shownMs <= 1000, 'the conversation appeared within 1 s');
  check(await ann.evaluate(() => window.__notReloaded === true && performance.getEntriesByType('navigation').length === 1), 'without a reload');
  await ann.click(`#list li[data-id="telegram:${BOT}:501"]`);
  await ann.waitForSelector('#transcript li.in');
  check((await ann.textContent('#transcript li.in .text')) === 'Доброго дня! Where is my order?', 'the text is in the transcript');
  await tgMessage(gw, BOT, HOOK, 501, 'Taras', { photo: [{ file_id: 'pic1', file_unique_id: 'u1', width: 120, height: 80 }], caption: 'the parcel' });
  await ann.waitForSelector('#transcript img', { timeout: 3000, state: 'attached' }).catch(async (e) => {
    console.error(await ann.innerHTML('#transcript'));
    throw e;
  });
  const imgSrc = await ann.getAttribute('#transcript img', 'src');
  const media = await ann.request.get(`http://127.0.0.1:${gw}${imgSrc}`);
  check(media.status() === 200 && media.headers()['content-type'] === 'image/svg+xml', `the media route serves the image (${media.status()} ${media.headers()['content-type']})`);
  await waitFor(() => ann.$eval('#transcript img', (i) => i.complete && i.naturalWidth === 120), 5000, 'the image to load');
  check((await ann.getAttribute('#transcript img', 'src')).startsWith('/console/api/media/telegram/'), 'the image is shown inline through the media route');

  // Search by the customer's name finds the conversation (the index is written as events are read).
  await waitFor(async () => {
    await ann.fill('#search', 'taras');
    await ann.press('#search', 'Enter');
    await sleep(150);
    return (await listIds(ann)).includes(`telegram:${BOT}:501`);
  }, 5000, 'search results');
  check(true, 'searching "taras" finds the conversation');
  await ann.click('#views button[data-view=mine]');

  // ---- 2 ----
  await ann.selectOption('#canned', 'greeting');
  await ann.focus('#reply');
  await ann.keyboard.press('Enter');
  await waitFor(async () => Number(await tg.cmd('count sendMessage')) >= 1, 5000, 'sendMessage at the fake Telegram');
  await tg.cmd('dump').then(() => {}); // (the dump lines are drained below)
  await ann.waitForSelector('#transcript li.out .tick[data-status="sent"]', { timeout: 5000 });
  check((await ann.textContent('#transcript li.out .text')) === 'Hello Taras, how can I help?', 'the canned reply went out with its placeholder filled');
  check(true, 'the fake Telegram got sendMessage and the tick turned to sent');
  await ann.screenshot({ path: path.join(shots, 'conversation.png') });

  // WhatsApp: the customer writes, Ann answers with Enter, receipts turn the tick to read.
  await waPost(gw, { contacts: [{ profile: { name: 'Olena' }, wa_id: '380501112233' }], messages: [{ from: '380501112233', id: 'wamid.IN1', timestamp: String(Math.floor(Date.now() / 1000)), type: 'text', text: { body: 'Привіт, a question about delivery' } }] });
  const waConv = `whatsapp:${PNID}:380501112233`;
  await ann.waitForSelector(`#list li[data-id="${waConv}"]`, { timeout: 3000 });
  await ann.click(`#list li[data-id="${waConv}"]`);
  await ann.waitForSelector('#transcript li.in');
  await ann.fill('#reply', 'It leaves today.\nTracking follows.');
  await ann.focus('#reply');
  await ann.keyboard.press('Enter');
  await ann.waitForSelector('#transcript li.out .tick[data-status="sent"]', { timeout: 5000 });
  const msgId = await ann.getAttribute('#transcript li.out .tick', 'data-id');
  const rec = await api(gw, TOK, 'GET', `/v1/messages/${msgId}`);
  const wamid = rec.json && rec.json.external_message_id;
  check(!!wamid, 'the WhatsApp reply has the platform id');
  check((await ann.textContent('#transcript li.out .text')) === 'It leaves today.\nTracking follows.', 'Shift+Enter-free text kept its new line');
  for (const st of ['delivered', 'read']) {
    await waPost(gw, { statuses: [{ id: wamid, status: st, timestamp: String(Math.floor(Date.now() / 1000)), recipient_id: '380501112233' }] });
    await ann.waitForSelector(`#transcript .tick[data-status="${st}"]`, { timeout: 3000 });
    check(true, `the tick turned to ${st} live`);
  }

  // ---- 3 ----
  for (const c of [`telegram:${BOT}:501`, waConv])
    check((await api(gw, TOK, 'POST', `/v1/conversations/${encodeURIComponent(c)}/close`, {})).status === 200, 'earlier conversation closed');
  const ctxB = await browser.newContext({ locale: 'uk-UA', viewport: { width: 1200, height: 760 } });
  const bob = await ctxB.newPage();
  bob.on('dialog', (dlg) => { dialogs.push(dlg.message()); dlg.dismiss().catch(() => {}); });
  await signIn(bob, gw, 'bob');
  check((await bob.textContent('#signout')) === 'Вийти', 'a Ukrainian browser gets the Ukrainian words');
  const five = [601, 602, 603, 604, 605];
  for (const chat of five) { await tgMessage(gw, BOT, HOOK, chat, 'Customer' + chat, { text: 'hello from ' + chat }); await sleep(150); }
  let a = [], b = [];
  await waitFor(async () => { a = await listIds(ann); b = await listIds(bob); return a.length === 2 && b.length === 2; }, 5000, 'two conversations each');
  check(a.every((x) => !b.includes(x)), 'each agent sees only its own conversations');
  const queued = five.map((c) => `telegram:${BOT}:${c}`).find((c) => !a.includes(c) && !b.includes(c));
  await ann.click('#views button[data-view=queue]');
  await waitFor(async () => (await listIds(ann)).join() === queued, 3000, 'the queue view');
  check(true, 'the fifth customer waits in the queue');
  await ann.click('#views button[data-view=mine]');
  await ann.click(`#list li[data-id="${a[0]}"]`);
  await ann.waitForSelector('#conv-close:not([hidden])');
  await ann.click('#conv-close');
  await waitFor(async () => (await listIds(ann)).includes(queued), 3000, 'the queued conversation in ann\'s inbox');
  check(!(await listIds(bob)).includes(queued), 'closing one pulled the queued conversation to ann, not bob');
  await bob.click(`#list li[data-id="${b[0]}"]`);
  await bob.waitForSelector('#transcript li.in');
  await bob.screenshot({ path: path.join(shots, 'inbox-uk.png') });
  await ann.click(`#list li[data-id="${queued}"]`);
  await ann.waitForSelector('#transcript li.in');
  await ann.fill('#reply', 'A draft for this customer');
  await ann.screenshot({ path: path.join(shots, 'inbox.png') });
  await ann.click(`#list li[data-id="${a[1]}"]`);
  await ann.waitForSelector('#transcript li.in');
  check((await ann.inputValue('#reply')) === '', 'the other conversation has its own (empty) draft');
  await ann.click(`#list li[data-id="${queued}"]`);
  check((await ann.inputValue('#reply')) === 'A draft for this customer', 'the draft is kept while switching');
  await ann.fill('#reply', '');
  // Both agents are full: a sixth customer waits, and shows in the queue view live.
  await ann.click('#views button[data-view=queue]');
  await waitFor(async () => (await listIds(ann)).length === 0, 3000, 'an empty queue');
  await ann.evaluate(() => { window.__notReloaded = true; });
  await tgMessage(gw, BOT, HOOK, 606, 'Customer606', { text: 'anyone there?' });
  await ann.waitForSelector(`#list li[data-id="telegram:${BOT}:606"]`, { timeout: 3000 });
  check(await ann.evaluate(() => window.__notReloaded === true), 'a new waiting customer shows in the queue live');
  await ann.click('#views button[data-view=mine]');
  await ann.click(`#list li[data-id="${queued}"]`);

  // ---- 4 ----
  const hostile = ['<img src=x onerror=alert(1)>', '<script>alert(2)</script>', 'javascript:alert(3)', 'مرحبا، أين طلبي؟'];
  for (const text of hostile) await tgMessage(gw, BOT, HOOK, queued.split(':')[2] * 1, '<b onmouseover=alert(4)>Mallory</b>', { text });
  await ann.click(`#list li[data-id="${queued}"]`);
  await waitFor(async () => (await ann.$$('#transcript li.in')).length >= 5, 5000, 'the hostile messages');
  const texts = await ann.$$eval('#transcript li.in .text', (n) => n.map((x) => x.textContent));
  check(hostile.every((h) => texts.includes(h)), 'hostile texts are in the DOM literally');
  check((await ann.$$('#transcript img[src="x"], #transcript script, #list b')).length === 0, 'no markup was made from them');
  check((await ann.textContent('#conv-name')) === '<b onmouseover=alert(4)>Mallory</b>', 'the hostile name shows literally');
  const rtl = await ann.$eval('#transcript li.in:last-child .text', (n) => getComputedStyle(n).direction);
  check(rtl === 'rtl', 'an Arabic message runs right to left');
  await ann.hover('#conv-name');
  await sleep(300);
  check(dialogs.length === 0, 'no dialog opened');
  check(errors.length === 0, 'no script or console error' + (errors.length ? ': ' + errors.join('; ') : ''));

  // Cross-origin posts: another site (localhost) and another origin of this site (another port).
  const evilPort = await freePort();
  const evil = http.createServer((req, res) => {
    res.setHeader('Content-Type', 'text/html');
    res.end(`<form id=f method=POST action="http://127.0.0.1:${gw}/console/api/conversations/${encodeURIComponent(queued)}/close" enctype="text/plain"><input name='{"a":"' value='"}'></form><script>document.getElementById('f').submit()</script>`);
  });
  await new Promise((r) => evil.listen(evilPort, '127.0.0.1', r));
  for (const host of ['localhost', '127.0.0.1']) {
    const p = await ctxA.newPage();
    const answered = p.waitForResponse((r) => r.url().includes('/close'), { timeout: 5000 });
    await p.goto(`http://${host}:${evilPort}/`);
    const resp = await answered;
    check(resp.status() === 403 || resp.status() === 401, `a form post from http://${host}:${evilPort} is refused (${resp.status()})`);
    await p.close();
  }
  evil.close();
  const still = await api(gw, TOK, 'GET', `/v1/conversations/${encodeURIComponent(queued)}`);
  check(still.json.state === 'assigned' && still.json.agent === 'ann', 'and the conversation is unchanged');

  await tgMessage(gw, BOT_G, HOOK_G, 77, 'Globex customer', { text: 'not acme' });
  await waitFor(async () => (await api(gw, TOK_G, 'GET', `/v1/conversations/${encodeURIComponent('telegram:' + BOT_G + ':77')}`)).status === 200, 5000, 'the other tenant\'s conversation');
  const other = await ann.request.get(`http://127.0.0.1:${gw}/console/api/conversations/${encodeURIComponent('telegram:' + BOT_G + ':77')}`);
  check(other.status() === 404, "another tenant's conversation answers 404");

  await ann.click('#signout');
  await ann.waitForSelector('#signin-form:not([hidden])');
  const after = await ann.request.get(`http://127.0.0.1:${gw}/console/api/me`);
  check(after.status() === 401, 'sign-out ended the session');
  await ann.screenshot({ path: path.join(shots, 'signin.png') });

  // An expired session (ended in Redis, as the idle expiry does) sends bob to sign in.
  const { execFileSync } = await import('node:child_process');
  const sock = path.join(work, 'redis.sock');
  for (const k of execFileSync('redis-cli', ['-s', sock, '--scan', '--pattern', 'deskbridge:session:*'], { encoding: 'utf8' }).split('\n').filter(Boolean))
    execFileSync('redis-cli', ['-s', sock, 'DEL', k]);
  // The next request the page makes is refused; a click makes one unless a live event did.
  if (await bob.isVisible('#views button[data-view=queue]')) await bob.click('#views button[data-view=queue]', { timeout: 2000 }).catch(() => {});
  await bob.waitForSelector('#signin-form:not([hidden])', { timeout: 5000 });
  check(true, 'an expired session sends the agent to sign in');

  // ---- 6 ----
  // A supervisor's team figures: acme's agents and accounts with what the API answers, a
  // hostile agent name as text, globex's agent and account absent; an agent has no view and
  // gets 403.
  const HOSTILE_NAME = '<img src=x onerror=alert(5)>';
  check((await api(gw, TOK, 'PUT', '/v1/agents/eve', { name: HOSTILE_NAME, capacity: 0 })).status === 200, 'an agent with a hostile name made');
  check((await api(gw, TOK, 'PUT', '/v1/agents/sue', { name: 'Sue Park', capacity: 0 })).status === 200, 'supervisor sue made');
  check((await api(gw, TOK, 'PUT', '/v1/console/agents/sue/secret', { secret: PW.sue, role: 'supervisor' })).status === 200, "sue's secret set (supervisor)");
  check((await api(gw, TOK_G, 'PUT', '/v1/agents/gil', { name: 'Gil Globex' })).status === 200, "globex's agent made");
  // Bob answers one of his customers through the API.
  check((await api(gw, TOK, 'POST', '/v1/messages', { conversation: b[0], text: 'Looking into it', agent: 'bob' })).status === 202, 'bob answered through the API');
  // Survey answers as the dispatcher records them: ann 5 and 4, bob 2; globex's gil 1.
  const at = Date.now();
  const csatOf = [[5, `telegram:${BOT}:501`, 'ann', `telegram:${BOT}`], [4, waConv, 'ann', `whatsapp:${PNID}`],
    [2, b[0], 'bob', `telegram:${BOT}`], [1, `telegram:${BOT_G}:77`, 'gil', `telegram:${BOT_G}`]];
  for (const [score, conv, agent, acct] of csatOf)
    execFileSync('redis-cli', ['-s', sock, 'ZADD', 'deskbridge:stats:csat', String(at), `${score}|${conv}|${at}|${agent}|${acct}`]);
  // A first response of 90 s for eve (capacity 0: no customer reaches her).
  execFileSync('redis-cli', ['-s', sock, 'ZADD', 'deskbridge:stats:frt', String(at), `90000|telegram:${BOT}:9999|${at}|eve|telegram:${BOT}`]);

  const ctxS = await browser.newContext({ locale: 'en-US', viewport: { width: 1400, height: 800 } });
  const sue = await ctxS.newPage();
  sue.on('dialog', (dlg) => { dialogs.push(dlg.message()); dlg.dismiss().catch(() => {}); });
  sue.on('pageerror', (e) => errors.push('pageerror: ' + e.message));
  sue.on('console', (m) => { if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) errors.push('console: ' + m.text()); });
  await signIn(sue, gw, 'sue');
  const teamApi = async () => {
    const r = await sue.request.get(`http://127.0.0.1:${gw}/console/api/stats/agents`);
    return { status: r.status(), json: await r.json() };
  };
  // The dispatcher records bob's reply from the outbox: wait until the figures hold it.
  await waitFor(async () => (await teamApi()).json.agents.bob.handled.day === 1, 5000, "bob's reply in the figures");
  check(await sue.isVisible('#team-open'), 'a supervisor has the Team button');
  let requests = 0;
  sue.on('request', (r) => { if (r.url().endsWith('/console/api/stats/agents')) requests++; });
  await sue.click('#team-open');
  await sue.waitForSelector('#team-agents tbody tr[data-agent="ann"]', { timeout: 5000 });
  check(requests === 1 && await sue.isHidden('#list'), 'opening the view fetched the figures once and it replaced the inbox');
  const fromApi = (await teamApi()).json;
  const nb = (x) => x.replace(/\u00a0/g, ' ');
  const dur = (ms) => {
    if (ms === null || ms === undefined) return '\u2014';
    if (ms < 1000) return 'under 1 s';
    const sec = Math.round(ms / 1000);
    if (sec < 60) return `${sec} s`;
    if (sec < 3600) return `${Math.floor(sec / 60)} min` + (sec % 60 ? ` ${sec % 60} s` : '');
    let h = Math.floor(sec / 3600), m = Math.round((sec % 3600) / 60);
    if (m === 60) { h++; m = 0; }
    return `${h} h` + (m ? ` ${m} min` : '');
  };
  const sat = (w) => (w && w.count ? `${w.average.toFixed(1)} (${w.count})` : '\u2014');
  const expectCells = (f) => [String(f.handled.hour), String(f.handled.day), dur(f.first_response.hour.median_ms),
    dur(f.first_response.day.median_ms), dur(f.first_response.hour.p90_ms), dur(f.first_response.day.p90_ms),
    sat(f.satisfaction.hour), sat(f.satisfaction.day)];
  const rowCells = (sel) => sue.$$eval(`${sel} td[data-k]`, (tds) => tds.map((td) => td.textContent));
  const shownAgents = await sue.$$eval('#team-agents tbody tr[data-agent]', (trs) => trs.map((tr) => tr.getAttribute('data-agent')));
  check(shownAgents.slice().sort().join() === 'ann,bob,eve,sue' && Object.keys(fromApi.agents).sort().join() === 'ann,bob,eve,sue',
    `acme's supervisor sees acme's agents only, not globex's gil (${shownAgents.join()})`);
  const shownAccounts = await sue.$$eval('#team-accounts tbody tr[data-account]', (trs) => trs.map((tr) => tr.getAttribute('data-account')));
  check(shownAccounts.sort().join() === `telegram:${BOT},whatsapp:${PNID}`, `and acme's accounts only (${shownAccounts.join()})`);
  for (const id of shownAgents) {
    const cells = (await rowCells(`#team-agents tr[data-agent="${id}"]`)).map(nb);
    check(cells.join(' | ') === expectCells(fromApi.agents[id]).join(' | '), `${id}'s row matches the API: ${cells.join(' | ')}`);
  }
  for (const acct of shownAccounts) {
    const cells = (await rowCells(`#team-accounts tr[data-account="${acct}"]`)).map(nb);
    check(cells.join(' | ') === expectCells(fromApi.accounts[acct]).join(' | '), `${acct}'s row matches the API: ${cells.join(' | ')}`);
  }
  const annCells = (await rowCells('#team-agents tr[data-agent="ann"]')).map(nb);
  check(annCells[1] === '2' && annCells[7] === '4.5 (2)' && annCells[2] !== '\u2014', 'ann: 2 conversations handled today, a first-response median, satisfaction 4.5 of 2 answers');
  const bobCells = (await rowCells('#team-agents tr[data-agent="bob"]')).map(nb);
  check(bobCells[1] === '1' && bobCells[7] === '2.0 (1)', 'bob: the conversation answered through the API and its answer 2');
  const eveCells = (await rowCells('#team-agents tr[data-agent="eve"]')).map(nb);
  check(eveCells[2] === '1 min 30 s' && eveCells[5] === '1 min 30 s', 'a 90 s first response reads "1 min 30 s"');
  check(nb(await sue.textContent('#team-csat')) === 'Satisfaction, all accounts: hour 3.7 (3) · day 3.7 (3)', "acme's satisfaction is acme's answers (5, 4, 2), not globex's 1");
  check(await sue.textContent('#team-agents tr[data-agent="ann"] td:first-child') === 'Ann Kovalenko (ann)', 'agents are named');
  check(await sue.textContent('#team-agents tr[data-agent="eve"] td:first-child') === HOSTILE_NAME + ' (eve)', 'the hostile name shows literally');
  check((await sue.$$('#team img, #team script')).length === 0 && (await sue.$$eval('#team-agents td', (tds) => tds.every((td) => td.children.length === 0))), 'and no element was made from it');
  check(await sue.textContent('#team-agents tr[data-agent="ann"] td.presence') === 'online', 'presence is shown');
  // Refresh shows what changed since.
  execFileSync('redis-cli', ['-s', sock, 'ZADD', 'deskbridge:stats:csat', String(Date.now()), `5|telegram:${BOT}:9999|${Date.now()}|eve|telegram:${BOT}`]);
  await sue.click('#team-refresh');
  await waitFor(async () => nb((await rowCells('#team-agents tr[data-agent="eve"]'))[7]) === '5.0 (1)', 3000, "eve's new answer after Refresh");
  check(true, 'Refresh fetched the new figures');
  check(await sue.evaluate(() => Object.keys(window.DB_STRINGS.en).every((k) => typeof window.DB_STRINGS.uk[k] === 'string')), 'every console word has its Ukrainian');
  await sue.screenshot({ path: path.join(shots, 'team.png') });
  await sue.click('#team-close');
  check(await sue.isVisible('#list') && await sue.isHidden('#team'), 'Back returns to the inbox');
  check(dialogs.length === 0 && errors.length === 0, 'no dialog and no script error' + (errors.length ? ': ' + errors.join('; ') : ''));
  // An agent has no such view, and the route refuses it.
  await signIn(ann, gw, 'ann');
  check(await ann.isHidden('#team-open'), 'an agent has no Team button');
  const refused = await ann.request.get(`http://127.0.0.1:${gw}/console/api/stats/agents`);
  check(refused.status() === 403, `an agent asking for the figures gets ${refused.status()}`);
  await ctxS.close();

  // ---- 5 ----
  for (const f of ['inbox.png', 'conversation.png', 'signin.png', 'inbox-uk.png', 'team.png'])
    check(fs.statSync(path.join(shots, f)).size > 1000, `screenshot ${f} saved`);
  await browser.close();

  // The gateway stops cleanly, and its log holds no secret, cookie or sanitizer report.
  const exited = new Promise((r) => d.on('exit', (code, sig) => r({ code, sig })));
  d.kill('SIGTERM');
  const ex = await exited;
  check(ex.code === 0, `the gateway exited with 0 (${ex.code ?? ex.sig})`);
  const logText = fs.readFileSync(path.join(work, 'gateway.log'), 'utf8');
  for (const never of [PW.ann, PW.bob, PW.sue, TOK, TOK_G, ADMIN, 'Sanitizer', 'runtime error'])
    check(!logText.includes(never), `the log does not contain ${never.startsWith('Sani') || never.startsWith('runtime') ? never : 'a secret'}`);
}

main().catch((e) => { failed = true; console.error(e.stack || String(e)); })
  .finally(() => {
    for (const c of children.reverse()) { try { c.kill('SIGTERM'); } catch (e) { /* gone */ } }
    if (failed) {
      try { console.error(fs.readFileSync(path.join(work, 'gateway.log'), 'utf8').split('\n').slice(-40).join('\n')); } catch (e) { /* none */ }
    }
    setTimeout(() => { fs.rmSync(work, { recursive: true, force: true }); process.exit(failed ? 1 : 0); }, 300);
  });
