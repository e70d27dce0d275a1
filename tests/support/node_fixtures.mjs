// Fixtures shared by the Node.js checks (tests/contract, tests/browser): a free port, waiting,
// a fresh database, wachatd started the way tests/support/process.cpp starts it, and Meta's
// webhook signature. No test framework: each check is a plain script that exits non-zero.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function eventually(what, check, ms = 15000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

export const sign = (secret, body) => `sha256=${crypto.createHmac('sha256', secret).update(body).digest('hex')}`;

// Runs cleanups in reverse order of registration, each at most once, whatever fails.
export class Cleanups {
  constructor(log) {
    this.list = [];
    this.log = log;
  }

  push(fn) {
    this.list.push(fn);
  }

  async run() {
    while (this.list.length) {
      try {
        await this.list.pop()();
      } catch (e) {
        this.log(`cleanup: ${e.message}`);
      }
    }
  }
}

// A new database on the server of `adminUrl` (a superuser URL), dropped at cleanup.
export async function freshDatabase(pg, adminUrl, cleanups, prefix) {
  const name = `${prefix}_${crypto.randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  cleanups.push(async () => {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  });
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

// Starts wachatd with a clean environment (PATH, HOME and the sanitizer options, plus `env`),
// waits until /readyz answers 200 and returns its base URL. At cleanup it is stopped with
// SIGTERM; `showLog()` decides whether the tail of its log is printed then.
export async function startWachatd(binary, env, { cleanups, logDir, log, showLog }) {
  const port = await freePort();
  const logPath = path.join(logDir, 'wachatd.log');
  const out = fs.openSync(logPath, 'w');
  const keep = Object.fromEntries(['PATH', 'HOME', 'ASAN_OPTIONS', 'UBSAN_OPTIONS']
    .filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]]));
  const child = spawn(binary, [], {
    env: { ...keep, ...env, WACHAT_LISTEN: `127.0.0.1:${port}` }, stdio: ['ignore', out, out],
  });
  let exited = null;
  child.on('exit', (code, signal) => { exited = signal ?? code; });
  cleanups.push(async () => {
    if (exited === null) {
      child.kill('SIGTERM');
      const deadline = Date.now() + 10000;
      while (exited === null && Date.now() < deadline) await sleep(50);
      if (exited === null) child.kill('SIGKILL');
    }
    if (showLog()) log(`--- wachatd log (tail) ---\n${fs.readFileSync(logPath, 'utf8').slice(-4000)}`);
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  await eventually('wachatd /readyz', async () => {
    if (exited !== null) throw new Error(`wachatd exited (${exited}):\n${fs.readFileSync(logPath, 'utf8')}`);
    try {
      return (await fetch(`${baseUrl}/readyz`)).status === 200;
    } catch {
      return false;
    }
  }, 30000);
  return baseUrl;
}
