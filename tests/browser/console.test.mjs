// The console in a real browser (Debian's chromium, driven by playwright-core): an operator signs
// in, connects a site against a fake Graph API, watches a customer's message arrive live,
// replies, sees the ticks move, lets the window close, sends a template, and sees an image
// arrive; then the same at phone width, with keyboard use, labels and contrast checked.
// Screenshots of each screen land in $WACHAT_CONSOLE_ARTIFACTS (not committed).
//
// Usage: node tests/browser/console.test.mjs [path/to/wachatd]   (scripts/console_check.sh)
// Needs WACHAT_TEST_DATABASE_URL: a PostgreSQL superuser URL (scripts/test.sh sets it).
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

import { Cleanups, eventually, freshDatabase, sign, startWachatd } from '../support/node_fixtures.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(path.join(root, 'tools/browser/package.json'));
const { chromium } = require('playwright-core');
const pg = require('pg');

const log = (line) => process.stdout.write(`${line}\n`);
const failures = [];
const cleanups = new Cleanups(log);
const artifacts = process.env.WACHAT_CONSOLE_ARTIFACTS || path.join(os.tmpdir(), 'wachat-console-artifacts');
fs.mkdirSync(artifacts, { recursive: true });

function check(ok, what, details) {
  if (!ok) {
    failures.push(what);
    log(`FAIL ${what}${details !== undefined ? `\n  ${typeof details === 'string' ? details : JSON.stringify(details)}` : ''}`);
  }
  return ok;
}

const PHONE_ID = '106540352242999';
const WABA_ID = '102290129340398';
const CUSTOMER = '260971234567';
// A customer's photo: a real PNG (a 160×100 green picture), as the media worker and the
// browser see it.
function png(width, height, [r, g, b]) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const byte of buf) c = crcTable[(c ^ byte) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(body));
    return Buffer.concat([len, body, sum]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8;  // bit depth
  header[9] = 2;  // RGB
  const row = Buffer.concat([Buffer.from([0]), Buffer.from(Array.from({ length: width }, () => [r, g, b]).flat())]);
  const pixels = zlib.deflateSync(Buffer.concat(Array.from({ length: height }, () => row)));
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', header), chunk('IDAT', pixels), chunk('IEND', Buffer.alloc(0))]);
}
const PNG = png(160, 100, [37, 211, 102]);

// Templates over two pages, as Meta pages them: the console must show the second page too.
const TEMPLATES = [
  { name: 'hello_world', language: 'en_US', status: 'APPROVED', category: 'UTILITY', quality_score: { score: 'GREEN' }, components: [{ type: 'BODY', text: 'Hello World' }] },
  { name: 'order_update', language: 'en_US', status: 'APPROVED', category: 'UTILITY', components: [
    { type: 'HEADER', format: 'TEXT', text: 'Order {{1}}' },
    { type: 'BODY', text: 'Hi {{1}}, your order {{2}} ships {{3}}.' },
    { type: 'FOOTER', text: 'Acme Shop' }] },
  { name: 'spring_sale', language: 'en_US', status: 'APPROVED', category: 'MARKETING', components: [{ type: 'BODY', text: 'Spring sale: 20% off everything.' }] },
  { name: 'draft_notice', language: 'en_US', status: 'PENDING', category: 'UTILITY', components: [{ type: 'BODY', text: 'Not yet' }] },
];

// Graph as Meta documents it, for one good token: phone lookup, template pages, sends, mark-read,
// media lookup and download.
function startFakeGraph(goodToken) {
  const state = { sends: [], uploads: 0, base: '' };
  const server = http.createServer((req, res) => {
    const send = (status, body, type = 'application/json') => {
      res.writeHead(status, { 'content-type': type });
      res.end(type === 'application/json' ? JSON.stringify(body) : body);
    };
    const url = new URL(req.url, 'http://x');
    const parts = url.pathname.split('/');
    if (req.headers.authorization !== `Bearer ${goodToken}`) {
      return send(401, { error: { message: 'Invalid OAuth access token.', type: 'OAuthException', code: 190, error_data: { details: 'The access token could not be decrypted' }, fbtrace_id: 'AzFakeTrace' } });
    }
    if (req.method === 'GET' && parts[1] === 'files') return send(200, PNG, 'image/png');
    if (req.method === 'GET' && parts[3] === 'message_templates') {
      const second = url.searchParams.get('after') === 'page2';
      const data = second ? TEMPLATES.slice(2) : TEMPLATES.slice(0, 2);
      const paging = { cursors: { before: 'b', after: second ? 'end' : 'page2' } };
      if (!second) paging.next = `${state.base}${url.pathname}?after=page2`;
      return send(200, { data, paging });
    }
    if (req.method === 'GET' && parts[2]?.startsWith('media')) {
      return send(200, { messaging_product: 'whatsapp', url: `${state.base}/files/${parts[2]}.png`, mime_type: 'image/png',
        sha256: crypto.createHash('sha256').update(PNG).digest('hex'), file_size: PNG.length, id: parts[2] });
    }
    if (req.method === 'GET') {
      return send(200, { display_phone_number: '+1 555-010-0199', verified_name: 'Acme Shop', quality_rating: 'GREEN', id: parts[2] });
    }
    if (req.method === 'POST' && parts[3] === 'media') {
      // An upload (multipart, as Meta takes it): its id is what the send then names.
      req.resume();
      return req.on('end', () => send(200, { id: `meta-upload-${++state.uploads}` }));
    }
    let raw = '';
    req.on('data', (chunk) => { raw += chunk; });
    req.on('end', () => {
      let msg = {};
      try { msg = JSON.parse(raw); } catch { /* answered below */ }
      if (msg.status === 'read') return send(200, { success: true });
      const wamid = `wamid.CONSOLE_${crypto.randomBytes(6).toString('hex')}`;
      state.sends.push({ body: msg, wamid });
      const to = msg.to ?? msg.recipient;
      return send(200, { messaging_product: 'whatsapp', contacts: [{ input: to, wa_id: to }], messages: [{ id: wamid }] });
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    state.base = `http://127.0.0.1:${server.address().port}`;
    resolve({ server, state });
  }));
}

let baseUrl = '';
let secrets = {};
const pageErrors = [];  // script errors and policy violations, reported even when a step times out
let seq = 0;
const now = () => Math.floor(Date.now() / 1000);

async function apiCall(method, target, token, body) {
  const res = await fetch(baseUrl + target, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

// A signed delivery for the configured phone number, as Meta posts it.
async function deliver(value) {
  const body = JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [{ id: WABA_ID, changes: [{ field: 'messages', value: {
      messaging_product: 'whatsapp', metadata: { display_phone_number: '15550100199', phone_number_id: PHONE_ID }, ...value } }] }],
  });
  const res = await fetch(`${baseUrl}/api/modules/live-chat/webhooks/whatsapp`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-hub-signature-256': sign(secrets.appSecret, body) }, body,
  });
  check(res.status === 200, `webhook delivery answered ${res.status}`);
}

const contact = { profile: { name: 'Sheena Nelson' }, wa_id: CUSTOMER };
function customerMessage(extra) {
  return { contacts: [contact], messages: [{ from: CUSTOMER, id: `wamid.IN_${++seq}_${crypto.randomBytes(4).toString('hex')}`, timestamp: String(now()), ...extra }] };
}
function status(wamid, st, errors) {
  return { statuses: [{ id: wamid, status: st, timestamp: String(now()), recipient_id: CUSTOMER, ...(errors ? { errors } : {}) }] };
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
}

// Labels, names, alternative text and contrast of what is on screen now (WCAG AA: 4.5:1, 3:1
// for large text). Returns the problems found.
async function accessibilityProblems(page) {
  return page.evaluate(() => {
    const problems = [];
    const visible = (el) => {
      const r = el.getBoundingClientRect();
      const cs = getComputedStyle(el);
      return r.width > 0 && r.height > 0 && cs.visibility !== 'hidden' && cs.display !== 'none';
    };
    for (const el of document.querySelectorAll('input, select, textarea')) {
      if (!visible(el) || el.type === 'hidden') continue;
      const named = el.labels?.length || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby');
      if (!named) problems.push(`unlabelled ${el.tagName.toLowerCase()} ${el.id || el.name || ''}`);
    }
    for (const el of document.querySelectorAll('button, a[href]')) {
      if (!visible(el)) continue;
      if (!(el.textContent.trim() || el.getAttribute('aria-label') || el.querySelector('img[alt]:not([alt=""])'))) problems.push(`nameless ${el.tagName.toLowerCase()}`);
    }
    for (const img of document.querySelectorAll('img')) {
      if (!img.hasAttribute('alt')) problems.push(`img without alt: ${img.src}`);
    }
    const rgba = (s) => {
      const m = s.match(/rgba?\(([^)]+)\)/);
      if (!m) return [0, 0, 0, 0];
      const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
      return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
    };
    const lum = ([r, g, b]) => {
      const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const background = (el) => {
      // Composites the ancestors' backgrounds from the page's up.
      const chain = [];
      for (let e = el; e; e = e.parentElement) chain.push(rgba(getComputedStyle(e).backgroundColor));
      let c = [255, 255, 255];
      for (const layer of chain.reverse()) {
        const a = layer[3];
        c = [0, 1, 2].map((i) => layer[i] * a + c[i] * (1 - a));
      }
      return c;
    };
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    const seen = new Set();
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const el = n.parentElement;
      if (!el || seen.has(el) || !n.textContent.trim() || !visible(el)) continue;
      if (el.closest('.sr-only, [hidden], option, dialog:not([open]), .skip')) continue;
      seen.add(el);
      const cs = getComputedStyle(el);
      const fg = rgba(cs.color);
      const bg = background(el);
      const fgc = [0, 1, 2].map((i) => fg[i] * fg[3] + bg[i] * (1 - fg[3]));
      const [l1, l2] = [lum(fgc), lum(bg)].sort((a, b) => b - a);
      const ratio = (l1 + 0.05) / (l2 + 0.05);
      const size = parseFloat(cs.fontSize);
      const large = size >= 24 || (size >= 18.66 && Number(cs.fontWeight) >= 700);
      if (ratio < (large ? 3 : 4.5)) problems.push(`contrast ${ratio.toFixed(2)} for "${n.textContent.trim().slice(0, 40)}" (${cs.color} on rgb(${bg.map(Math.round)}))`);
    }
    return problems;
  });
}

async function expectAccessible(page, where) {
  const problems = await accessibilityProblems(page);
  check(problems.length === 0, `${where}: accessibility`, problems.join('\n  '));
}

async function scenario(browser, graph) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(10000);
  // Nothing leaves the server's origin (no CDN, no external request) and the policy blocks nothing.
  const foreign = [];
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(baseUrl) && !u.startsWith('data:') && !u.startsWith('blob:')) foreign.push(u);
  });
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/.test(m.text())) pageErrors.push(m.text());
  });

  // --- Served as the contract says ---------------------------------------------------------
  const served = await fetch(`${baseUrl}/console/`);
  const csp = served.headers.get('content-security-policy') || '';
  check(served.status === 200 && served.headers.get('content-type').startsWith('text/html'), 'GET /console/ is the page');
  check(csp.includes("script-src 'self'") && !csp.includes('unsafe'), 'the console has a strict Content-Security-Policy', csp);
  const redirect = await fetch(`${baseUrl}/console`, { redirect: 'manual' });
  check(redirect.status === 308 && redirect.headers.get('location') === '/console/', '/console redirects to /console/');
  check((await fetch(`${baseUrl}/console/nothing.js`)).status === 404, 'an unknown console file is 404');

  // --- Sign-in ------------------------------------------------------------------------------
  await page.goto(`${baseUrl}/console/`);
  await page.getByLabel('Access token').fill('wct_not_a_real_token');
  await page.getByLabel('Site id').fill('acme');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('This token is not known to wachat.').waitFor();
  await expectAccessible(page, 'sign-in');
  await shot(page, '01-sign-in');
  await page.getByLabel('Access token').fill(secrets.siteToken);
  await page.getByLabel('Your name (shown to customers as the sender)').fill('Ada Agent');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#conversation-list').waitFor();
  check(!page.url().includes(secrets.siteToken), 'the token never appears in the URL', page.url());
  check(await page.evaluate(() => localStorage.length === 0), 'nothing is kept in local storage');

  // --- Settings: refused, then connected ----------------------------------------------------
  await page.getByRole('link', { name: 'WhatsApp settings' }).click();
  await page.locator('#wa-status', { hasText: 'Not connected' }).waitFor();
  check(await page.locator('ol.guide > li').count() === 5, 'the set-up guide has five steps');
  const webhookUrl = await page.getByLabel('Webhook URL to register at Meta').inputValue();
  check(webhookUrl === `${baseUrl}/api/modules/live-chat/webhooks/whatsapp`, 'the webhook URL to register is shown', webhookUrl);
  check((await page.getByLabel('Verify token').inputValue()).length > 0, 'the site verify token is shown');
  await page.getByLabel('Phone number', { exact: true }).fill('+1 555-010-0199');
  await page.getByLabel('Phone number id').fill(PHONE_ID);
  await page.getByLabel('WhatsApp Business Account id').fill(WABA_ID);
  await page.getByLabel('Access token').fill('EAABwrongwrongwrongwrong');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.locator('#settings-result', { hasText: 'Meta refused these credentials' }).waitFor();
  check(await page.locator('#settings-result', { hasText: 'code 190' }).count() === 1, 'Graph’s refusal is shown with its code');
  await page.getByLabel('Access token').fill(secrets.graphToken);
  await page.getByRole('button', { name: 'Save' }).click();
  await page.locator('#wa-status', { hasText: 'Connected' }).waitFor();
  await page.locator('#phone-number', { hasText: '+1 555-010-0199' }).first().waitFor();
  await page.locator('#phone-quality', { hasText: 'GREEN' }).first().waitFor();
  const tokenPlaceholder = await page.getByLabel('Access token').getAttribute('placeholder');
  check(tokenPlaceholder.includes('…') && !tokenPlaceholder.includes(secrets.graphToken), 'the saved token is shown masked only', tokenPlaceholder);
  check(!(await page.content()).includes(secrets.graphToken), 'the access token is nowhere in the page');
  // Both pages of templates, with status and quality.
  await page.locator('#templates td', { hasText: 'spring_sale' }).waitFor();
  check(await page.locator('#templates tr', { hasText: 'draft_notice' }).filter({ hasText: 'PENDING' }).count() === 1, 'templates show their status');
  check(await page.locator('#templates tr', { hasText: 'hello_world' }).filter({ hasText: 'GREEN' }).count() === 1, 'templates show their quality');
  // The welcome template selector offers the approved ones.
  check(await page.getByLabel('Welcome template (sent when a new conversation starts)').locator('option', { hasText: 'order_update' }).count() === 1, 'the welcome template selector lists approved templates');
  // A test message reaches Graph.
  await page.getByLabel('To (international format)').fill('+260971234567');
  await page.getByRole('button', { name: 'Send test message' }).click();
  await page.locator('#test-message-result', { hasText: 'Meta accepted the message' }).waitFor();
  check(graph.state.sends.some((s) => s.body.text?.body?.startsWith('Hello from wachat')), 'the test message reached Graph');
  await page.locator('#usage').waitFor();
  check(await page.getByRole('link', { name: /Pricing/ }).count() === 1, 'the pricing documentation is linked');
  await expectAccessible(page, 'settings');
  await shot(page, '02-settings-connected');

  // --- A customer writes: it appears live ---------------------------------------------------
  await page.getByRole('link', { name: 'Conversations' }).click();
  await page.locator('#live-state[data-state="live"]').waitFor();
  await deliver(customerMessage({ type: 'text', text: { body: 'Hi, where is my order?' } }));
  const item = page.locator('#conversation-list .conv-item', { hasText: 'Sheena Nelson' });
  await item.waitFor();
  check(await item.locator('.badge-wa').count() === 1, 'the conversation carries the WhatsApp badge');
  await item.locator('.unread', { hasText: '1' }).waitFor();
  await shot(page, '03-conversation-arrived');

  // Keyboard: reach the conversation with Tab and open it with Enter.
  await page.locator('#main').focus();
  let reached = false;
  for (let i = 0; i < 25 && !reached; i++) {
    await page.keyboard.press('Tab');
    reached = await page.evaluate(() => document.activeElement?.classList.contains('conv-item'));
  }
  check(reached, 'the conversation list is reachable with the keyboard');
  await page.keyboard.press('Enter');
  await page.locator('#conv-heading', { hasText: 'Sheena Nelson' }).waitFor();
  check(await page.locator('.identity', { hasText: CUSTOMER }).count() === 1, 'the customer’s phone is shown');
  await page.locator('#window-indicator[data-state="open"]').waitFor();
  const countdown = await page.locator('#window-countdown').textContent();
  check(/^2[34]:\d\d:\d\d$/.test(countdown), 'the window shows its countdown', countdown);
  await item.locator('.unread').waitFor({ state: 'detached' });

  // --- Reply; the ticks follow Meta's statuses ----------------------------------------------
  await page.getByLabel('Your reply').fill('Your order ships today.');
  await page.keyboard.press('Enter');
  const reply = page.locator('#messages li.msg.out', { hasText: 'Your order ships today.' });
  await reply.locator('.ticks-sent').waitFor();
  const sent = graph.state.sends.find((s) => s.body.text?.body === 'Your order ships today.');
  check(sent && sent.body.to === CUSTOMER, 'the reply reached Graph for the customer', sent);
  check(await reply.locator('.msg-sender', { hasText: 'Ada Agent' }).count() === 1, 'the reply carries the agent’s name');
  await deliver({ statuses: [{ ...status(sent.wamid, 'delivered').statuses[0],
    pricing: { billable: false, pricing_model: 'PMP', type: 'free_customer_service', category: 'service' } }] });
  await reply.locator('.ticks-delivered').waitFor();
  const grey = await reply.locator('.ticks').evaluate((e) => getComputedStyle(e).color);
  await deliver(status(sent.wamid, 'read'));
  await reply.locator('.ticks-read').waitFor();
  const blue = await reply.locator('.ticks').evaluate((e) => getComputedStyle(e).color);
  check(grey !== blue, 'read ticks are coloured differently from delivered ones', `${grey} vs ${blue}`);
  check((await reply.locator('.ticks').getAttribute('aria-label')) === 'Read', 'the ticks are named for screen readers');
  await shot(page, '04-ticks');

  // A reply to the customer's message, and a reaction, both as Meta receives them.
  const inbound = page.locator('#messages li.msg.in', { hasText: 'Hi, where is my order?' });
  await inbound.getByRole('button', { name: /^Reply to/ }).click();
  await page.getByLabel('Your reply').fill('Here is the tracking link.');
  await page.getByRole('button', { name: 'Send', exact: true }).click();
  const quoted = page.locator('#messages li.msg.out', { hasText: 'Here is the tracking link.' });
  await quoted.locator('blockquote', { hasText: 'Hi, where is my order?' }).waitFor();
  await quoted.locator('.ticks-sent').waitFor();
  const withContext = graph.state.sends.find((s) => s.body.text?.body === 'Here is the tracking link.');
  check(withContext?.body.context?.message_id?.startsWith('wamid.IN_'), 'a reply carries context.message_id', withContext?.body);
  await inbound.getByRole('button', { name: 'React 👍' }).click();
  await inbound.locator('.reaction', { hasText: '👍' }).waitFor();
  check(graph.state.sends.some((s) => s.body.type === 'reaction' && s.body.reaction?.emoji === '👍'), 'the reaction reached Graph');

  // An image from the agent: uploaded, sent by Meta's media id with the text as its caption, and
  // shown in its bubble.
  await page.setInputFiles('#composer-file', { name: 'invoice.png', mimeType: 'image/png', buffer: PNG });
  await page.locator('#composer-attachment', { hasText: 'Attached: invoice.png' }).waitFor();
  await page.getByLabel('Your reply').fill('Your invoice');
  await page.getByRole('button', { name: 'Send', exact: true }).click();
  const outImage = page.locator('#messages li.msg.out', { hasText: 'Your invoice' });
  await outImage.locator('.ticks-sent').waitFor();
  await eventually('the agent’s image to load', () => outImage.locator('img.media-img').evaluate((img) => img.complete && img.naturalWidth === 160), 10000);
  const imageSend = graph.state.sends.find((x) => x.body.type === 'image');
  check(imageSend?.body.image?.id === 'meta-upload-1' && imageSend.body.image.caption === 'Your invoice', 'the image reached Graph by its uploaded id with its caption', imageSend?.body);
  check(await page.locator('#composer-attachment').textContent() === '', 'the composer is cleared after the send');

  // A retryable failure: red cross with Meta's error on hover, and a retry that sends again.
  await deliver(status(withContext.wamid, 'failed', [{ code: 131000, title: 'Something went wrong', message: 'Something went wrong', error_data: { details: 'Temporary failure at Meta' } }]));
  const cross = quoted.locator('.ticks-failed');
  await cross.waitFor();
  const hover = await cross.getAttribute('title');
  check(hover.includes('Something went wrong') && hover.includes('131000'), 'the failure shows Meta’s error on hover', hover);
  await shot(page, '05-failed');
  const sendsBefore = graph.state.sends.length;
  await quoted.getByRole('button', { name: 'Retry' }).click();
  await quoted.locator('.ticks-sent').waitFor();
  check(graph.state.sends.length === sendsBefore + 1 && graph.state.sends.at(-1).body.text?.body === 'Here is the tracking link.', 'retry sent the message again');

  // An inbound reaction and an opt-out keyword.
  await deliver(customerMessage({ type: 'reaction', reaction: { message_id: sent.wamid, emoji: '❤️' } }));
  await reply.locator('.reaction', { hasText: '❤️' }).waitFor();
  await deliver(customerMessage({ type: 'text', text: { body: 'STOP' } }));
  await page.locator('.identity .tag', { hasText: 'Opted out of marketing' }).waitFor();

  // --- The window closes: Meta reports 131047 for a reply; the composer turns to templates -----
  await page.getByLabel('Your reply').fill('Are you still there?');
  await page.getByRole('button', { name: 'Send', exact: true }).click();
  const refused = page.locator('#messages li.msg.out', { hasText: 'Are you still there?' });
  await refused.locator('.ticks-sent').waitFor();
  const late = graph.state.sends.find((x) => x.body.text?.body === 'Are you still there?');
  const closedAt = { statuses: [{ id: late.wamid, status: 'failed', timestamp: String(now() + 1), recipient_id: CUSTOMER,
    errors: [{ code: 131047, title: 'Re-engagement message', message: 'Re-engagement message', error_data: { details: 'Message failed to send because more than 24 hours have passed since the customer last replied to this number.' } }] }] };
  await deliver(closedAt);
  await refused.locator('.ticks-failed').waitFor();
  check(await refused.getByRole('button', { name: 'Retry' }).count() === 0, 'a failure that a retry cannot fix offers no retry');
  await page.locator('#template-required').waitFor();
  check(await page.getByLabel('Your reply').isDisabled(), 'the text composer is off while the window is closed');
  check(await page.locator('#send-warnings', { hasText: 'window is closed' }).count() === 1, 'the composer says why before a send');
  await shot(page, '06-window-closed');

  await page.getByRole('button', { name: 'Send a template…' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByLabel('Template').waitFor();
  await dialog.getByLabel('Template').selectOption({ label: 'spring_sale — en_US (marketing)' });
  await dialog.locator('#tpl-warnings', { hasText: 'opted out of marketing' }).waitFor();
  check(await dialog.getByRole('button', { name: 'Send template' }).isDisabled(), 'a marketing template to an opted-out customer cannot be sent');
  await dialog.getByLabel('Template').selectOption({ label: 'order_update — en_US (utility)' });
  check(await dialog.getByRole('button', { name: 'Send template' }).isDisabled(), 'a template with empty parameters cannot be sent');
  await dialog.getByLabel('Header {{1}}').fill('A-17');
  await dialog.getByLabel('Body {{1}}').fill('Sheena');
  await dialog.getByLabel('Body {{2}}').fill('A-17');
  await dialog.getByLabel('Body {{3}}').fill('today');
  await dialog.locator('#tpl-preview', { hasText: 'Hi Sheena, your order A-17 ships today.' }).waitFor();
  await expectAccessible(page, 'template dialog');
  await shot(page, '07-template-dialog');
  await dialog.getByRole('button', { name: 'Send template' }).click();
  await dialog.waitFor({ state: 'detached' });
  await page.locator('#messages li.msg.out', { hasText: 'Hi Sheena, your order A-17 ships today.' }).locator('.ticks-sent').waitFor();
  const tpl = graph.state.sends.find((s) => s.body.type === 'template');
  const bodyParams = tpl?.body.template?.components?.find((c) => c.type === 'body')?.parameters?.map((p) => p.text);
  check(tpl?.body.template?.name === 'order_update' && JSON.stringify(bodyParams) === '["Sheena","A-17","today"]', 'the template reached Graph with its parameters', tpl?.body);

  // --- An image arrives and is shown --------------------------------------------------------
  await deliver(customerMessage({ type: 'image', image: { id: 'media1', mime_type: 'image/png', sha256: crypto.createHash('sha256').update(PNG).digest('hex'), caption: 'My receipt' } }));
  const image = page.locator('#messages li.msg.in img.media-img');
  await image.waitFor({ timeout: 20000 });
  await eventually('the image to load', () => image.evaluate((img) => img.complete && img.naturalWidth === 160), 10000);
  check((await image.getAttribute('alt')).startsWith('image from the customer'), 'the image has alternative text', await image.getAttribute('alt'));
  await page.locator('#window-indicator[data-state="open"]').waitFor();
  // Seen as it arrives: the open conversation does not stay unread.
  await item.locator('.unread').waitFor({ state: 'detached' });
  await expectAccessible(page, 'conversation');
  await shot(page, '08-conversation');

  // The priced status shows in the site's usage.
  await page.getByRole('link', { name: 'WhatsApp settings' }).click();
  await page.locator('#usage tr', { hasText: 'service' }).filter({ hasText: 'free_customer_service' }).waitFor();
  await page.getByRole('link', { name: 'Conversations' }).click();
  await page.locator('#conversation-list .conv-item', { hasText: 'Sheena Nelson' }).click();

  // --- Phone width --------------------------------------------------------------------------
  await page.setViewportSize({ width: 375, height: 740 });
  await page.reload();
  await page.locator('#conv-heading', { hasText: 'Sheena Nelson' }).waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, 'no sideways scrolling at phone width', `${overflow}px too wide`);
  check(await page.locator('#conversation-list').isHidden(), 'at phone width the open conversation has the screen');
  await shot(page, '09-phone-conversation');
  await page.getByRole('link', { name: '← All conversations' }).click();
  await page.locator('#conversation-list .conv-item').first().waitFor();
  check(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'the list fits at phone width');
  await expectAccessible(page, 'phone-width list');
  await shot(page, '10-phone-list');

  // Paging: 55 more customers write at once; the list shows the newest 50, the rest on demand.
  const many = { contacts: [], messages: [] };
  for (let i = 0; i < 55; i++) {
    const wa = String(260970000100 + i);
    many.contacts.push({ profile: { name: `Customer ${i}` }, wa_id: wa });
    many.messages.push({ from: wa, id: `wamid.MANY_${i}`, timestamp: String(now()), type: 'text', text: { body: `hello ${i}` } });
  }
  await deliver(many);
  const allConversations = async () => (await apiCall('GET', '/api/sites/acme/conversations?limit=200', secrets.siteToken)).body.conversations;
  await eventually('56 conversations', async () => (await allConversations()).length === 56, 20000);
  const sheena = (await allConversations()).find((c) => c.visitor.name === 'Sheena Nelson');
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.reload();
  await page.locator('#conversation-list .conv-item').nth(49).waitFor();
  check(await page.locator('#conversation-list .conv-item').count() === 50, 'the list shows the newest 50 first');
  await page.getByRole('button', { name: 'Show older conversations' }).click();
  await page.locator('#conversation-list .conv-item').nth(55).waitFor();
  check(await page.locator('#more-conversations').isHidden(), 'nothing more to show after the last page');

  // Disconnecting asks first, then erases the credentials; the conversations stay.
  await page.getByRole('link', { name: 'WhatsApp settings' }).click();
  await page.getByRole('button', { name: 'Disconnect WhatsApp' }).click();
  const confirm = page.getByRole('dialog', { name: 'Disconnect WhatsApp?' });
  await confirm.getByRole('button', { name: 'Cancel' }).click();
  await confirm.waitFor({ state: 'detached' });
  check(await page.locator('#wa-status', { hasText: 'Connected' }).count() === 1, 'cancelling the disconnect changes nothing');
  await page.getByRole('button', { name: 'Disconnect WhatsApp' }).click();
  await confirm.getByRole('button', { name: 'Disconnect' }).click();
  await page.locator('#wa-status', { hasText: /Not connected|Disabled/ }).waitFor();
  const after = await apiCall('GET', '/api/sites/acme/whatsapp/status', secrets.siteToken);
  check(after.body.enabled === false && after.body.access_token === null, 'disconnect erased the credentials', after.body);
  check((await allConversations()).length === 56, 'the conversations stay after disconnecting');
  await page.goto(`${baseUrl}/console/#/conversations/${sheena.id}`);
  await page.locator('#send-warnings', { hasText: 'sends will be refused' }).waitFor();
  check(await page.getByRole('button', { name: 'Send', exact: true }).isDisabled(), 'with WhatsApp disconnected the composer warns and holds the send');

  // The admin token: choose a site, or create one and land on its settings.
  const admin = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const adminPage = await admin.newPage();
  adminPage.setDefaultTimeout(10000);
  await adminPage.goto(`${baseUrl}/console/`);
  await adminPage.getByLabel('Access token').fill(secrets.adminToken);
  await adminPage.getByRole('button', { name: 'Sign in' }).click();
  await adminPage.getByLabel('Site', { exact: true }).locator('option', { hasText: 'Acme (acme)' }).waitFor({ state: 'attached' });
  await adminPage.getByLabel('Site id').fill('beta-shop');
  await adminPage.getByLabel('Name').fill('Beta Shop');
  await adminPage.getByRole('button', { name: 'Create site' }).click();
  await adminPage.locator('#wa-status', { hasText: 'Not connected' }).waitFor();
  check(await adminPage.locator('#who', { hasText: 'site beta-shop (admin)' }).count() === 1, 'the admin works on the site it created');
  check((await apiCall('GET', '/api/sites', secrets.adminToken)).body.sites.some((x) => x.id === 'beta-shop'), 'the site exists');
  await shot(adminPage, '11-admin-new-site');
  await admin.close();

  check(foreign.length === 0, 'the console made no request outside its origin', foreign);
  check(pageErrors.length === 0, 'no script error and nothing blocked by the policy', pageErrors);
  await context.close();
}

// The stream ticket, as a client other than the console would use it.
async function streamTickets() {
  const t = await apiCall('POST', '/api/sites/acme/events/tickets', secrets.siteToken);
  check(t.status === 201 && /^wst_[0-9a-f]{64}$/.test(t.body?.ticket) && t.body.expires_in === 60, 'a stream ticket is issued', t);
  const other = await apiCall('POST', '/api/sites/other/events/tickets', secrets.siteToken);
  check(other.status === 404, 'a site token gets no ticket for another site', other.status);
  const wrongSite = await fetch(`${baseUrl}/api/sites/other/events?ticket=${t.body.ticket}`);
  check(wrongSite.status === 404, 'a ticket opens only its own site’s stream', wrongSite.status);
  const again = await fetch(`${baseUrl}/api/sites/acme/events?ticket=${t.body.ticket}`);
  check(again.status === 401, 'a ticket opens at most one stream (even a refused attempt spends it)', again.status);
  const fresh = await apiCall('POST', '/api/sites/acme/events/tickets', secrets.siteToken);
  const ac = new AbortController();
  const open = await fetch(`${baseUrl}/api/sites/acme/events?ticket=${fresh.body.ticket}`, { signal: ac.signal });
  check(open.status === 200 && open.headers.get('content-type') === 'text/event-stream', 'a fresh ticket opens the stream', open.status);
  ac.abort();
  const notOnOtherRoutes = await fetch(`${baseUrl}/api/sites/acme/whatsapp/status?ticket=${fresh.body.ticket}`);
  check(notOnOtherRoutes.status === 401, 'a ticket is no bearer token for other calls', notOnOtherRoutes.status);
}

async function main() {
  const binary = process.argv[2] || path.join(root, 'build/wachatd');
  const adminUrl = process.env.WACHAT_TEST_DATABASE_URL;
  if (!adminUrl) throw new Error('WACHAT_TEST_DATABASE_URL is not set');
  const rnd = (n) => crypto.randomBytes(n).toString('hex');
  secrets = { adminToken: `adm_${rnd(16)}`, appSecret: rnd(16), graphToken: `EAAB${rnd(16)}` };
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wachat-console-'));
  cleanups.push(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const dbUrl = await freshDatabase(pg, adminUrl, cleanups, 'wachat_console');
  const graph = await startFakeGraph(secrets.graphToken);
  cleanups.push(() => new Promise((r) => { graph.server.closeAllConnections(); graph.server.close(r); }));
  fs.mkdirSync(path.join(tmp, 'media'));
  baseUrl = await startWachatd(binary, {
    WACHAT_DATABASE_URL: dbUrl,
    WACHAT_ADMIN_TOKEN: secrets.adminToken,
    WHATSAPP_APP_SECRET: secrets.appSecret,
    WACHAT_MASTER_KEY: crypto.randomBytes(32).toString('base64'),
    WACHAT_MEDIA_DIR: path.join(tmp, 'media'),
    WACHAT_GRAPH_BASE_URL: graph.state.base,
  }, { cleanups, logDir: tmp, log, showLog: () => failures.length > 0 });

  check((await apiCall('POST', '/api/sites', secrets.adminToken, { id: 'acme', name: 'Acme' })).status === 201, 'site created');
  check((await apiCall('POST', '/api/sites', secrets.adminToken, { id: 'other', name: 'Other' })).status === 201, 'second site created');
  const token = await apiCall('POST', '/api/sites/acme/tokens', secrets.adminToken);
  secrets.siteToken = token.body.token;

  await streamTickets();
  const browser = await chromium.launch({
    executablePath: process.env.WACHAT_CHROMIUM || '/usr/bin/chromium',
    // As root chromium needs --no-sandbox; the rest keeps it off the (closed) network.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
  cleanups.push(() => browser.close());
  let page;
  try {
    await scenario(browser, graph);
  } catch (e) {
    if (pageErrors.length) log(`page errors so far:\n  ${pageErrors.join('\n  ')}`);
    // Keep a picture of where it stopped.
    for (const ctx of browser.contexts()) {
      page = ctx.pages()[0];
      if (page) await page.screenshot({ path: path.join(artifacts, 'failure.png'), fullPage: true }).catch(() => {});
    }
    throw e;
  }
}

const watchdog = setTimeout(() => { check(false, 'watchdog: the check took over 240 s'); cleanups.run().then(() => process.exit(1)); }, 240000);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => cleanups.run().then(() => process.exit(1)));

try {
  await main();
} catch (e) {
  check(false, `aborted: ${e.stack || e.message}`);
}
await cleanups.run();
clearTimeout(watchdog);
log(failures.length ? `console browser check: ${failures.length} failure(s); screenshots in ${artifacts}`
  : `console browser check: passed; screenshots in ${artifacts}`);
process.exit(failures.length ? 1 : 0);
