// Live contract check: starts wachatd on a fresh database, drives it the way the dashboard and
// Meta do, and validates every answer against docs/openapi.yaml (status declared, content type
// declared, JSON body valid against the declared schema). A request to a path or method the spec
// does not have fails too, so the spec cannot silently fall behind the server.
//
// Usage: node tests/contract/openapi_live.mjs [path/to/wachatd]   (or env WACHATD)
// Needs WACHAT_TEST_DATABASE_URL: a PostgreSQL superuser URL (scripts/test.sh sets it).
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { Cleanups, eventually, freshDatabase, sign, startWachatd as startWachatdProcess } from '../support/node_fixtures.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
// The pinned tools live in tools/openapi/node_modules (scripts/lint_openapi.sh installs them).
const require = createRequire(path.join(root, 'tools/openapi/package.json'));
const Ajv2020 = require('ajv/dist/2020').default;
const addFormats = require('ajv-formats').default;
const YAML = require('yaml');
const pg = require('pg');

const specBase = 'https://wachat.invalid/openapi.yaml';
const spec = YAML.parse(fs.readFileSync(path.join(root, 'docs/openapi.yaml'), 'utf8'));
const ajv = new Ajv2020({ allErrors: true, strict: false });
addFormats(ajv);
// The whole document is registered so that '#/components/...' refs resolve inside it; only
// schema locations are ever compiled.
ajv.addSchema({ ...spec, $id: specBase });

const failures = [];
const exercised = new Set();
const log = (line) => process.stdout.write(`${line}\n`);

function fail(what, details) {
  failures.push(what);
  log(`FAIL ${what}${details ? `\n${details}` : ''}`);
}

// --- The spec: path matching, $ref following, validators ------------------------------------

const escapePtr = (s) => s.replaceAll('~', '~0').replaceAll('/', '~1');
const specPaths = Object.keys(spec.paths).map((template) => ({
  template,
  regex: new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^/}]+\}/g, '[^/]+')}$`),
}));

function resolvePtr(ptr) {
  return ptr.slice(2).split('/').reduce((o, k) => o?.[k.replaceAll('~1', '/').replaceAll('~0', '~')], spec);
}

// Follows OpenAPI-level $refs (responses, request bodies). `ptr` is where `obj` sits; the
// answer is the object finally reached and where that sits.
function deref(obj, ptr) {
  while (obj && obj.$ref) {
    ptr = obj.$ref;
    obj = resolvePtr(ptr);
  }
  return [obj, ptr];
}

// The operation for a concrete request, or null when the spec has no such path and method.
function operationFor(method, urlPath) {
  const m = method.toLowerCase();
  const hit = specPaths.find((p) => p.regex.test(urlPath) && spec.paths[p.template][m]);
  return hit ? { op: spec.paths[hit.template][m], ptr: `#/paths/${escapePtr(hit.template)}/${m}`, name: `${method} ${hit.template}` } : null;
}

const validators = new Map();
function validatorAt(ptr) {
  if (!validators.has(ptr)) {
    validators.set(ptr, ajv.compile({ $ref: `${specBase}${ptr}` }));
  }
  return validators.get(ptr);
}

function checkJson(label, ptr, value) {
  const validate = validatorAt(ptr);
  if (!validate(value)) {
    fail(label, `  schema ${ptr}\n  errors ${JSON.stringify(validate.errors, null, 2)}\n  body ${JSON.stringify(value).slice(0, 2000)}`);
    return false;
  }
  return true;
}

const baseType = (ct) => (ct || '').split(';')[0].trim().toLowerCase();

// The schema location for `type` in a content map at `ptr`, or null when not declared.
function mediaSchemaPtr(content, ptr, type) {
  const key = Object.keys(content || {}).find((k) => baseType(k) === type);
  return key ? `${ptr}/content/${escapePtr(key)}/schema` : null;
}

// Checks one answer against the operation's declared responses; returns the parsed JSON body.
function checkResponse(label, found, status, contentType, text) {
  const declared = found.op.responses?.[String(status)] ? String(status) : 'default';
  const [response, ptr] = deref(found.op.responses?.[declared], `${found.ptr}/responses/${declared}`);
  if (!response) {
    fail(`${label}: status ${status} is not declared`, `  body ${text.slice(0, 500)}`);
    return undefined;
  }
  if (!response.content) {
    if (text.length > 0) fail(`${label}: declares no body but got ${text.length} bytes`);
    return undefined;
  }
  const type = baseType(contentType);
  const schemaPtr = mediaSchemaPtr(response.content, ptr, type);
  if (!schemaPtr) {
    fail(`${label}: content type '${contentType}' not declared (${Object.keys(response.content)})`);
    return undefined;
  }
  if (type === 'text/plain') {
    checkJson(label, schemaPtr, text);
  }
  if (type !== 'application/json') {
    return undefined;
  }
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    fail(`${label}: body is not JSON`, `  body ${text.slice(0, 500)}`);
    return undefined;
  }
  checkJson(label, schemaPtr, body);
  return body;
}

// --- Talking to the server ------------------------------------------------------------------

let baseUrl = '';

// One request, checked against the spec. `json` is sent as a JSON body (and validated against
// the declared request body); `raw` is sent as is (for invalid bodies and signed webhooks).
async function call(method, target, { token, json, raw, headers = {}, expect } = {}) {
  const urlPath = target.split('?')[0];
  const label = `${method} ${target} → ${expect}`;
  const found = operationFor(method, urlPath);
  if (!found) {
    fail(`${method} ${urlPath}: not in docs/openapi.yaml`);
    return { status: 0, body: undefined };
  }
  exercised.add(found.name);
  const h = { ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  let body = raw;
  if (json !== undefined) {
    body = JSON.stringify(json);
    const [reqBody, reqPtr] = deref(found.op.requestBody, `${found.ptr}/requestBody`);
    const ptr = reqBody && mediaSchemaPtr(reqBody.content, reqPtr, 'application/json');
    if (!ptr) fail(`${label}: the spec declares no JSON request body`);
    else checkJson(`${label} (request body)`, ptr, json);
  }
  if (body !== undefined && !h['content-type']) h['content-type'] = 'application/json';
  const res = await fetch(baseUrl + target, { method, headers: h, body, redirect: 'manual' });
  const text = await res.text();
  const before = failures.length;
  if (expect !== undefined && res.status !== expect) {
    fail(`${label}: answered ${res.status}`, `  body ${text.slice(0, 500)}`);
  }
  const parsed = checkResponse(label, found, res.status, res.headers.get('content-type'), text);
  if (failures.length === before) log(`ok   ${method} ${target} ${res.status}`);
  return { status: res.status, body: parsed, text };
}

// A method the path does not take: 405 with the MethodNotAllowed response's body and an Allow
// header naming exactly the methods the spec gives the path.
async function checkMethodNotAllowed(method, target, token) {
  const label = `${method} ${target} → 405`;
  const res = await fetch(baseUrl + target, { method, headers: token ? { authorization: `Bearer ${token}` } : {} });
  const text = await res.text();
  if (res.status !== 405) return fail(`${label}: answered ${res.status}`, `  body ${text.slice(0, 300)}`);
  const template = specPaths.find((p) => p.regex.test(target.split('?')[0]))?.template;
  const declared = Object.keys(spec.paths[template] || {}).filter((m) => ['get', 'put', 'post', 'patch', 'delete'].includes(m))
    .map((m) => m.toUpperCase()).sort().join(', ');
  const allow = (res.headers.get('allow') || '').split(',').map((m) => m.trim()).filter(Boolean).sort().join(', ');
  if (allow !== declared) fail(`${label}: Allow '${allow}' but the spec gives the path '${declared}'`);
  const [response, ptr] = deref({ $ref: '#/components/responses/MethodNotAllowed' }, '#/components/responses/MethodNotAllowed');
  checkJson(label, mediaSchemaPtr(response.content, ptr, 'application/json'), JSON.parse(text));
  log(`ok   ${method} ${target} 405 (Allow: ${allow})`);
}

// Opens the SSE stream, checks the answer and validates the first event against the spec.
async function checkFirstEvent(target, token, lastEventId) {
  const label = `GET ${target} (event stream)`;
  const found = operationFor('GET', target.split('?')[0]);
  if (!found) return fail(`GET ${target}: not in docs/openapi.yaml`);
  exercised.add(found.name);
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), 15000);
  try {
    const res = await fetch(baseUrl + target, {
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'last-event-id': lastEventId }, signal: ac.signal,
    });
    if (res.status !== 200) return fail(`${label}: answered ${res.status}`, `  ${await res.text()}`);
    const type = baseType(res.headers.get('content-type'));
    const [response, ptr] = deref(found.op.responses['200'], `${found.ptr}/responses/200`);
    const streamPtr = mediaSchemaPtr(response.content, ptr, type);
    if (type !== 'text/event-stream' || !streamPtr) return fail(`${label}: content type ${type}`);
    // Reads frames (blank-line separated) until one that is an event, not a comment.
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffered = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return fail(`${label}: stream ended before an event`);
      buffered += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffered.indexOf('\n\n')) >= 0) {
        const frame = buffered.slice(0, cut);
        buffered = buffered.slice(cut + 2);
        const fields = {};
        for (const line of frame.split('\n')) {
          const m = /^([^:]+): ?(.*)$/.exec(line);
          if (m && m[1] !== 'retry') fields[m[1]] = fields[m[1]] === undefined ? m[2] : `${fields[m[1]]}\n${m[2]}`;
        }
        if (fields.data === undefined) continue;
        // The stream is declared as an array of frames; a frame's data carries contentSchema.
        const itemPtr = `${streamPtr}/items`;
        if (!checkJson(`${label} frame`, itemPtr, fields)) return undefined;
        const [frameSchema, framePtr] = deref(resolvePtr(itemPtr), itemPtr);
        const dataPtr = frameSchema?.properties?.data?.contentSchema ? `${framePtr}/properties/data/contentSchema` : null;
        if (!dataPtr) return fail(`${label}: the spec declares no contentSchema for an event's data`);
        let data;
        try {
          data = JSON.parse(fields.data);
        } catch {
          return fail(`${label}: data is not JSON`, `  ${fields.data}`);
        }
        if (checkJson(`${label} data`, dataPtr, data)) log(`ok   ${label}: ${fields.event} id ${fields.id}`);
        return data;
      }
    }
  } catch (e) {
    return fail(`${label}: ${e.name === 'AbortError' ? 'no event within 15 s' : e.message}`);
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
}

// --- Fixtures: database, fake Graph API, wachatd ----------------------------------------------

// Graph's phone number lookup, enough for the settings PUT and test calls: one token is good,
// any other is refused the way Graph refuses an invalid token (META.md, code 190).
function startFakeGraph(goodToken) {
  const server = http.createServer((req, res) => {
    const send = (status, body) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const id = new URL(req.url, 'http://x').pathname.split('/')[2];
    if (req.headers.authorization !== `Bearer ${goodToken}`) {
      return send(401, { error: { message: 'Invalid OAuth access token.', type: 'OAuthException', code: 190, error_data: { details: 'token invalid' }, fbtrace_id: 'AzFakeTrace' } });
    }
    if (req.method === 'GET' && req.url.includes('/message_templates')) {
      return send(200, { data: [{ name: 'hello_world', language: 'en_US', status: 'APPROVED', category: 'UTILITY', components: [{ type: 'BODY', text: 'Hello World' }] }], paging: { cursors: { before: 'a', after: 'b' } } });
    }
    if (req.method === 'GET') {
      return send(200, { display_phone_number: '+1 555-078-3881', verified_name: 'Acme', quality_rating: 'GREEN', id });
    }
    // A send (not a mark-read) answers with the wamid, as Meta does.
    let raw = '';
    req.on('data', (chunk) => { raw += chunk; });
    req.on('end', () => {
      let msg = {};
      try { msg = JSON.parse(raw); } catch { /* answered below */ }
      if (msg.status === 'read') return send(200, { success: true });
      const to = msg.to ?? msg.recipient;
      return send(200, { messaging_product: 'whatsapp', contacts: [{ input: to, wa_id: to }], messages: [{ id: `wamid.OA_${crypto.randomBytes(6).toString('hex')}` }] });
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const cleanups = new Cleanups(log);

// Starts wachatd as tests/support/process.cpp does (plus wachat_fixture.cpp's settings) and
// waits until it is ready.
async function startWachatd(binary, env) {
  baseUrl = await startWachatdProcess(binary, env, {
    cleanups, logDir: path.join(env.WACHAT_MEDIA_DIR, '..'), log, showLog: () => failures.length > 0,
  });
}

// --- The scenario -----------------------------------------------------------------------------

function webhookBody(phoneNumberId, now) {
  return JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [{
      id: '102290129340398',
      changes: [{
        field: 'messages',
        value: {
          messaging_product: 'whatsapp',
          metadata: { display_phone_number: '15550783881', phone_number_id: phoneNumberId },
          contacts: [{ profile: { name: 'Sheena Nelson' }, wa_id: '260971234567' }],
          messages: [{ from: '260971234567', id: 'wamid.OA_IN_1', timestamp: String(now), type: 'text', text: { body: 'Hello from the contract check' } }],
          statuses: [{ id: 'wamid.OA_OUT_1', status: 'delivered', timestamp: String(now), recipient_id: '260971234567' }],
        },
      }],
    }],
  });
}

async function scenario(secrets) {
  const admin = secrets.adminToken;
  // Operations and Meta's subscription check.
  await call('GET', '/healthz', { expect: 200 });
  await call('GET', '/readyz', { expect: 200 });
  await call('GET', '/metrics', { expect: 200 });
  // The console's static files.
  await call('GET', '/console', { expect: 308 });
  const consolePage = await call('GET', '/console/', { expect: 200 });
  await call('GET', '/console/app.js', { expect: 200 });
  await call('GET', '/console/nothing.js', { expect: 404 });
  const etag = (await fetch(`${baseUrl}/console/`)).headers.get('etag');
  await call('GET', '/console/', { headers: { 'if-none-match': etag }, expect: 304 });
  if (!consolePage.text?.includes('<script type="module" src="app.js">')) fail('GET /console/: not the console page');
  const hook = '/api/modules/live-chat/webhooks/whatsapp';
  const v = await call('GET', `${hook}?hub.mode=subscribe&hub.verify_token=${secrets.verifyToken}&hub.challenge=1158201444`, { expect: 200 });
  if (v.text !== '1158201444') fail(`webhook GET echoed '${v.text}'`);
  await call('GET', `${hook}?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1`, { expect: 403 });

  // Sites and tokens.
  await call('POST', '/api/sites', { json: { id: 'acme', name: 'Acme' }, expect: 401 });
  await call('POST', '/api/sites', { token: 'not-a-token', json: { id: 'acme' }, expect: 401 });
  await call('POST', '/api/sites', { token: admin, raw: '{"id": "acme",', expect: 400 });
  await call('POST', '/api/sites', { token: admin, raw: JSON.stringify({ id: 'Bad Id' }), expect: 422 });
  await call('POST', '/api/sites', { token: admin, json: { id: 'acme', name: 'Acme' }, expect: 201 });
  await call('POST', '/api/sites', { token: admin, json: { id: 'acme' }, expect: 409 });
  await call('POST', '/api/sites', { token: admin, json: { id: 'other', name: 'Other' }, expect: 201 });
  await call('GET', '/api/sites', { token: admin, expect: 200 });
  const issued = await call('POST', '/api/sites/acme/tokens', { token: admin, expect: 201 });
  const site = issued.body?.token;
  if (!site) throw new Error('no site token issued');
  await call('POST', '/api/sites/missing/tokens', { token: admin, expect: 404 });
  await call('GET', '/api/sites', { token: site, expect: 403 });
  const spare = await call('POST', '/api/sites/acme/tokens', { token: admin, expect: 201 });
  await call('DELETE', `/api/tokens/${spare.body?.id}`, { token: admin, expect: 204 });
  await call('DELETE', `/api/tokens/${spare.body?.id}`, { token: admin, expect: 404 });

  // WhatsApp status; the phone number id is set in the database as wachat_fixture.cpp's
  // make_site does (the Graph-validated PUT is checked below when the binary has it).
  await call('GET', '/api/sites/acme/whatsapp/status', { token: site, expect: 200 });
  await call('GET', '/api/sites/other/whatsapp/status', { token: site, expect: 404 });
  await secrets.db.query(
    'UPDATE mod_chat_widget_settings SET whatsapp_enabled = true, whatsapp_phone_number_id = $1 WHERE site_id = $2',
    ['106540352242922', 'acme']);

  // A signed delivery with a text message and a status.
  const body = webhookBody('106540352242922', Math.floor(Date.now() / 1000));
  await call('POST', hook, { raw: body, expect: 401 });
  await call('POST', hook, { raw: body, headers: { 'x-hub-signature-256': sign('wrong', body) }, expect: 401 });
  await call('POST', hook, { raw: body, headers: { 'x-hub-signature-256': sign(secrets.appSecret, body) }, expect: 200 });
  const conv = await eventually('the conversation', async () => {
    const r = await call('GET', '/api/sites/acme/conversations?channel=whatsapp', { token: site, expect: 200 });
    return r.body?.conversations?.[0];
  });
  const c = `/api/conversations/${conv.id}`;

  // Conversation reads and changes.
  await call('GET', '/api/sites/acme/conversations?status=pending&limit=1', { token: admin, expect: 200 });
  await call('GET', '/api/sites/acme/conversations?status=bogus', { token: site, expect: 422 });
  await call('GET', '/api/sites/acme/conversations?cursor=%21%21', { token: site, expect: 400 });
  await call('GET', c, { token: site, expect: 200 });
  await call('GET', `${c}/window`, { token: site, expect: 200 });
  const page = await call('GET', `${c}/messages`, { token: site, expect: 200 });
  if (page.body?.messages?.length !== 1) fail(`expected 1 message, got ${page.body?.messages?.length}`);
  await call('GET', `${c}/messages?limit=500`, { token: site, expect: 422 });
  await call('GET', `${c}/messages?cursor=not-a-cursor`, { token: site, expect: 400 });
  await call('PUT', '/api/sites/acme/agents/agent-1', { token: site, json: { name: 'Ann', status: 'online', max_chats: 3 }, expect: 200 });
  await call('PUT', '/api/sites/acme/agents/agent-2', { token: site, raw: 'not json', expect: 400 });
  await call('PUT', '/api/sites/acme/agents/agent-2', { token: site, raw: JSON.stringify({ name: 'Bob', status: 'busy' }), expect: 422 });
  await call('PATCH', c, { token: site, json: { status: 'active', assigned_agent_id: 'agent-1' }, expect: 200 });
  await call('PATCH', c, { token: site, json: { assigned_agent_id: 'nobody' }, expect: 422 });
  await call('PATCH', c, { token: site, raw: '[1,', expect: 400 });
  await call('GET', '/api/sites/acme/agents', { token: site, expect: 200 });
  await call('POST', `${c}/read`, { token: site, expect: 200 });
  await call('GET', '/api/conversations/999999999', { token: site, expect: 404 });
  await call('GET', '/api/conversations/not-an-id', { token: admin, expect: 404 });
  await call('GET', c, { expect: 401 });

  // Sending: acme has a number but no access token, so a valid send is refused as disabled.
  const reply = { type: 'text', text: 'Thanks, on it.', sender_id: 'agent-1', sender_name: 'Ann' };
  await call('POST', `${c}/messages`, { token: site, raw: '{"type":', expect: 400 });
  await call('POST', `${c}/messages`, { token: site, json: { type: 'image', url: 'ftp://x.example/a.png', sender_id: 'a', sender_name: 'b' }, expect: 422 });
  await call('POST', `${c}/messages`, { token: site, json: reply, expect: 409 });
  await call('POST', '/api/conversations/999999999/messages', { token: site, json: reply, expect: 404 });

  // Live events: a replay from the start shows conversation.created first.
  await call('GET', '/api/sites/acme/events', { token: site, headers: { 'last-event-id': 'x' }, expect: 400 });
  await call('GET', '/api/sites/other/events', { token: site, expect: 404 });
  await call('GET', '/api/sites/acme/events', { expect: 401 });
  await checkFirstEvent('/api/sites/acme/events', site, '0');
  // A browser's way in: a single-use stream ticket instead of the bearer header.
  const ticket = await call('POST', '/api/sites/acme/events/tickets', { token: site, expect: 201 });
  await checkFirstEvent(`/api/sites/acme/events?ticket=${ticket.body?.ticket}`, null, '0');
  await call('GET', `/api/sites/acme/events?ticket=${ticket.body?.ticket}`, { expect: 401 });
  await call('POST', '/api/sites/acme/events/tickets', { expect: 401 });
  await call('POST', '/api/sites/nosuchsite/events/tickets', { token: site, expect: 404 });

  await whatsappSettings(admin, secrets.graphToken);
  await sendingOnConfiguredSite(admin, secrets, hook);
  await call('DELETE', '/api/sites/other/whatsapp', { token: site, expect: 404 });
  await call('DELETE', '/api/sites/other/whatsapp', { token: admin, expect: 204 });
}

// PUT settings and POST test (API.md §3.2) against the fake Graph API.
async function whatsappSettings(admin, graphToken) {
  const settings = { phone_number: '+1 555-078-3881', phone_number_id: '106540352242999', business_account_id: '102290129340398', access_token: graphToken };
  const none = await call('POST', '/api/sites/acme/whatsapp/test', { token: admin, expect: 200 });
  if (none.body?.ok !== false || !none.body?.error) fail('whatsapp/test without a token: expected ok false with an error', `  ${none.text}`);
  const rejected = await call('PUT', '/api/sites/other/whatsapp/settings', { token: admin, json: { ...settings, access_token: 'EAAB-refused-token-0000' }, expect: 422 });
  if (rejected.body?.error?.code !== 'graph_rejected_credentials' || rejected.body?.error?.graph?.code !== 190) {
    fail('refused credentials: expected graph_rejected_credentials with graph.code 190', `  ${rejected.text}`);
  }
  await call('PUT', '/api/sites/other/whatsapp/settings', { token: admin, raw: '{"phone_number_id": 12', expect: 400 });
  await call('PUT', '/api/sites/other/whatsapp/settings', { token: admin, json: settings, expect: 200 });
  await call('PUT', '/api/sites/other/whatsapp/settings', { token: admin, json: { ...settings, phone_number_id: '106540352242922' }, expect: 409 });
  const status = await call('GET', '/api/sites/other/whatsapp/status', { token: admin, expect: 200 });
  if (status.body?.credential_source !== 'site') fail(`status after PUT: credential_source ${status.body?.credential_source}`);
  const test = await call('POST', '/api/sites/other/whatsapp/test', { token: admin, expect: 200 });
  if (test.body?.ok !== true) fail('whatsapp/test with good credentials did not answer ok: true', `  ${test.text}`);
  // A site's own verify token passes Meta's subscription check too.
  const hook = '/api/modules/live-chat/webhooks/whatsapp';
  await call('GET', `${hook}?hub.mode=subscribe&hub.verify_token=${status.body?.verify_token}&hub.challenge=42`, { expect: 200 });
}

// `other` has working credentials (whatsappSettings): a customer writes, an agent answers.
async function sendingOnConfiguredSite(admin, secrets, hook) {
  const body = webhookBody('106540352242999', Math.floor(Date.now() / 1000)).replaceAll('wamid.OA_', 'wamid.OB_');
  await call('POST', hook, { raw: body, headers: { 'x-hub-signature-256': sign(secrets.appSecret, body) }, expect: 200 });
  const conv = await eventually('the conversation of other', async () => {
    const r = await call('GET', '/api/sites/other/conversations', { token: admin, expect: 200 });
    return r.body?.conversations?.[0];
  });
  const reply = { type: 'text', text: 'Your order ships today.', sender_id: 'agent-1', sender_name: 'Ann', client_message_id: 'oa-1' };
  const sent = await call('POST', `/api/conversations/${conv.id}/messages`, { token: admin, json: reply, expect: 201 });
  if (sent.body?.message?.status !== 'sent') fail('send: expected status sent', `  ${sent.text}`);
  await call('POST', `/api/conversations/${conv.id}/messages`, { token: admin, json: reply, expect: 201 });
  await call('POST', `/api/conversations/${conv.id}/messages`, { token: admin, json: { ...reply, text: 'other text' }, expect: 409 });
  await call('POST', `/api/conversations/${conv.id}/messages`, { token: admin, json: { ...reply, client_message_id: undefined, reply_to: 'wamid.unknown' }, expect: 422 });
  await call('POST', `/api/conversations/${conv.id}/messages/${sent.body?.message?.id}/retry`, { token: admin, expect: 409 });
  await call('POST', `/api/conversations/${conv.id}/messages/999999999/retry`, { token: admin, expect: 404 });
  await call('POST', `/api/conversations/${conv.id}/messages/${sent.body?.message?.id}/media/retry`, { token: admin, expect: 409 });
  await call('POST', `/api/conversations/${conv.id}/messages/999999999/media/retry`, { token: admin, expect: 404 });
  await call('GET', '/media/chat/other/0b5c_x.jpg?exp=99999999999&sig=00', { expect: 403 });
  await call('GET', '/media/chat/other/0b5c_x.jpg', { expect: 403 });
  await call('GET', '/api/sites/other/whatsapp/usage', { token: admin, expect: 200 });
  await call('GET', '/api/sites/other/whatsapp/usage?from=2026-11-01T00:00:00Z&to=2026-10-01T00:00:00Z', { token: admin, expect: 422 });
  await call('GET', '/api/sites/nope/whatsapp/usage', { token: admin, expect: 404 });
  const up = await call('POST', '/api/sites/other/media?filename=a.png', { token: admin, raw: 'not really a png', headers: { 'content-type': 'image/png' }, expect: 201 });
  await call('POST', '/api/sites/other/media', { token: admin, raw: '{}', expect: 415 });
  await call('POST', '/api/sites/other/media?type=image', { token: admin, raw: 'GIF89a', headers: { 'content-type': 'image/gif' }, expect: 422 });
  await call('POST', `/api/conversations/${conv.id}/messages`, { token: admin, json: { type: 'image', media_id: 'chat/other/none.png', sender_id: 'a', sender_name: 'b' }, expect: 422 });
  if (!up.body?.media?.id) fail('upload: no media id', `  ${up.text}`);
  await checkMethodNotAllowed('DELETE', `/api/conversations/${conv.id}`, admin);
  await checkMethodNotAllowed('PUT', `/api/conversations/${conv.id}/messages`, admin);
  await checkMethodNotAllowed('POST', '/media/chat/other/0b5c_x.jpg');
  await eventually('the CRM contact of the customer', async () => {
    const r = await fetch(`${baseUrl}/api/conversations/${conv.id}/contact`, { headers: { authorization: `Bearer ${admin}` } });
    return r.status === 200 || undefined;
  });
  await call('GET', `/api/conversations/${conv.id}/contact`, { token: admin, expect: 200 });
  await call('GET', '/api/conversations/999999999/contact', { token: admin, expect: 404 });
  const reaction = { type: 'reaction', message_id: 'wamid.OB_IN_1', emoji: '👍', sender_id: 'agent-1', sender_name: 'Ann' };
  await call('POST', `/api/conversations/${conv.id}/messages`, { token: admin, json: reaction, expect: 200 });
  await call('POST', `/api/conversations/${conv.id}/messages`, { token: admin, json: { ...reaction, message_id: 'wamid.none' }, expect: 422 });
  await call('POST', '/api/sites/other/whatsapp/test-message', { token: admin, json: { to: '+260971234567', text: 'test' }, expect: 200 });
  await call('POST', '/api/sites/other/whatsapp/test-message', { token: admin, json: { to: 'nobody', text: 'test' }, expect: 422 });
  await call('POST', '/api/sites/other/whatsapp/test-message', { token: admin, raw: '{', expect: 400 });
  const list = await call('GET', '/api/sites/other/whatsapp/templates', { token: admin, expect: 200 });
  if (list.body?.templates?.[0]?.name !== 'hello_world') fail('templates: expected hello_world', `  ${list.text}`);
  await call('GET', '/api/sites/other/whatsapp/templates?refresh=true', { token: admin, expect: 200 });
  await call('GET', '/api/sites/other/whatsapp/templates?refresh=yes', { token: admin, expect: 422 });
  await call('GET', '/api/sites/acme/whatsapp/templates', { token: admin, expect: 409 });
  const hello = { type: 'template', template: { name: 'hello_world', language: 'en_US' }, sender_id: 'agent-1', sender_name: 'Ann' };
  await call('POST', `/api/conversations/${conv.id}/messages`, { token: admin, json: hello, expect: 201 });
  await call('POST', `/api/conversations/${conv.id}/messages`, { token: admin, json: { ...hello, template: { name: 'nope', language: 'en_US' } }, expect: 422 });
}

async function main() {
  const binary = process.argv[2] || process.env.WACHATD || path.join(root, 'build/wachatd');
  const adminUrl = process.env.WACHAT_TEST_DATABASE_URL;
  if (!adminUrl) throw new Error('WACHAT_TEST_DATABASE_URL is not set');
  if (!fs.existsSync(binary)) throw new Error(`no wachatd at ${binary}`);
  // Fresh random secrets per run: nothing secret lives in the repository.
  const rnd = (n) => crypto.randomBytes(n).toString('hex');
  const secrets = {
    adminToken: `adm_${rnd(16)}`, appSecret: rnd(16), verifyToken: `vt_${rnd(8)}`, graphToken: `EAAB${rnd(16)}`,
  };
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wachat-oa-'));
  cleanups.push(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const dbUrl = await freshDatabase(pg, adminUrl, cleanups, 'wachat_oa');
  const graph = await startFakeGraph(secrets.graphToken);
  cleanups.push(() => new Promise((r) => { graph.closeAllConnections(); graph.close(r); }));
  fs.mkdirSync(path.join(tmp, 'media'));
  await startWachatd(binary, {
    WACHAT_DATABASE_URL: dbUrl,
    WACHAT_ADMIN_TOKEN: secrets.adminToken,
    WHATSAPP_APP_SECRET: secrets.appSecret,
    WACHAT_MASTER_KEY: crypto.randomBytes(32).toString('base64'),
    // Beyond the fixture: a verify token for the GET check, a media dir of our own, and Graph
    // pointed at the fake above so that no call leaves the machine.
    WHATSAPP_VERIFY_TOKEN: secrets.verifyToken,
    WACHAT_MEDIA_DIR: path.join(tmp, 'media'),
    WACHAT_GRAPH_BASE_URL: `http://127.0.0.1:${graph.address().port}`,
  });
  secrets.db = new pg.Client({ connectionString: dbUrl });
  await secrets.db.connect();
  cleanups.push(() => secrets.db.end());
  await scenario(secrets);
}

// ctest's timeout kills us outright; our own watchdog stops earlier and still cleans up.
const watchdog = setTimeout(() => { fail('watchdog: the check took over 300 s'); cleanups.run().then(() => process.exit(1)); }, 300000);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => cleanups.run().then(() => process.exit(1)));

let code = 0;
try {
  await main();
} catch (e) {
  fail(`aborted: ${e.stack || e.message}`);
}
const missing = Object.entries(spec.paths).flatMap(([p, item]) => Object.keys(item)
  .filter((m) => ['get', 'put', 'post', 'patch', 'delete'].includes(m) && !exercised.has(`${m.toUpperCase()} ${p}`))
  .map((m) => `${m.toUpperCase()} ${p}`));
if (missing.length) log(`not exercised: ${missing.join(', ')}`);
await cleanups.run();
clearTimeout(watchdog);
if (failures.length) {
  log(`openapi live check: ${failures.length} failure(s)`);
  code = 1;
} else {
  log(`openapi live check: passed (${exercised.size} operations)`);
}
process.exit(code);
