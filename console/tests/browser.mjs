// Browser tests of the console: the real `leadpush serve` binary on a free loopback port,
// driven through a real headless Chromium (Debian's `chromium`, through playwright-core,
// which never downloads a browser), with a real local HTTP receiver for webhooks.
// One server and one browser for every scenario. Prints one line per scenario and a
// closing summary; exits non-zero when anything failed, including a browser that cannot start.
//
//   node console/tests/browser.mjs --bin target/debug/leadpush [--screenshots DIR]

import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { checkVendor } from './vendor.mjs';

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1] : fallback;
};
const BIN = resolve(opt('--bin', 'target/debug/leadpush'));
const SHOTS = resolve(opt('--screenshots', 'target/console-screenshots'));
const CHROMIUM = process.env.CHROMIUM || opt('--chromium', '/usr/bin/chromium');
const WAIT = 15000; // the longest any single UI wait may take

const results = [];
const started = Date.now();
let server;
let browser;
let receiver;
let dataDir;

function fail(message) {
  throw new Error(message);
}

function assert(condition, message) {
  if (!condition) fail(message);
}

// ---------------------------------------------------------------------------------------
// The server, its admin CLI and a receiver.

function serverEnv() {
  return {
    ...process.env,
    LEADPUSH_DATA_DIR: dataDir,
    LEADPUSH_STORE: 'sqlite',
    LEADPUSH_ALLOW_PRIVATE_TARGETS: '1',
    LEADPUSH_WEBHOOK_RETRY_SCHEDULE: '50ms,100ms,200ms',
    LEADPUSH_PUSH_RETRY_SCHEDULE: '50ms,100ms',
    LEADPUSH_LOG: 'warn',
    // One delivery that fails every retry disables its endpoint (the auto-disable check).
    LEADPUSH_WEBHOOK_DISABLE_AFTER_FAILURES: '1',
    // Lead scores are recomputed as soon as an outcome arrives.
    LEADPUSH_RESCORE_DEBOUNCE_SECS: '0',
  };
}

async function startServer() {
  assert(existsSync(BIN), `the leadpush binary is missing at ${BIN} (build it with: cargo build -p leadpush-cli)`);
  dataDir = mkdtempSync(join(tmpdir(), 'leadpush-console-'));
  const child = spawn(BIN, ['serve', '--addr', '127.0.0.1:0', '--workers', '2', '--no-demo', '--exit-on-stdin-close'], {
    env: serverEnv(),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-4000); });
  const lines = createInterface({ input: child.stdout });
  const banner = [];
  const base = await new Promise((ok, ko) => {
    const timer = setTimeout(() => ko(new Error(`leadpush serve did not start within 60 s:\n${stderr}`)), 60000);
    child.on('exit', (code) => ko(new Error(`leadpush serve exited (${code}) before listening:\n${stderr}`)));
    let found = null;
    lines.on('line', (line) => {
      banner.push(line);
      const m = /^Leadpush listening on (\S+)/.exec(line);
      if (m) found = m[1];
      if (found && line.startsWith('Console: ')) {
        clearTimeout(timer);
        ok(found);
      }
    });
  });
  const consoleLine = banner.find((l) => l.startsWith('Console: '));
  assert(consoleLine.includes(`${base}/`) && consoleLine.includes(`${base}/docs`), `the banner names the console and /docs: ${consoleLine}`);
  return { child, base };
}

function admin(...argv) {
  const out = spawnSync(BIN, argv, { env: serverEnv(), encoding: 'utf8', timeout: 60000 });
  assert(out.status === 0, `leadpush ${argv.join(' ')} failed: ${out.stderr}`);
  return JSON.parse(out.stdout);
}

function newWorkspace(name) {
  const created = admin('admin', 'workspace', 'create', '--name', name);
  return { id: created.workspace_id, key: created.api_key };
}

async function call(method, path, { key, token, body } = {}) {
  const headers = {};
  if (key) headers['X-Satellyte-API-Key'] = key;
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const url = path.startsWith('http') ? path : `${server.base}${path}`;
  const res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { json = null; }
  return { status: res.status, body: json, text };
}

/** A real HTTP receiver on a free loopback port that records every request. */
async function startReceiver() {
  const requests = [];
  const srv = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      requests.push({ method: req.method, path: req.url, headers: req.headers, body });
      const failing = req.url.startsWith('/fail');
      res.writeHead(failing ? 500 : 200, { 'content-type': 'application/json' });
      if (failing) res.end('{"error":"receiver is down"}');
      else if (req.url.startsWith('/profile')) res.end(JSON.stringify({ plan: 'pro', seats: 12 }));
      else res.end('{"ok":true}');
    });
  });
  await new Promise((ok) => srv.listen(0, '127.0.0.1', ok));
  return { srv, requests, url: `http://127.0.0.1:${srv.address().port}` };
}

/** Waits (bounded) until `pred()` holds, yielding to the event loop between checks. */
async function until(what, pred, timeoutMs = WAIT) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await pred();
    if (value) return value;
    if (Date.now() > deadline) fail(`timed out waiting for ${what}`);
    await new Promise((ok) => setImmediate(ok));
  }
}

// ---------------------------------------------------------------------------------------
// Browser helpers.

async function launchBrowser() {
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (e) {
    fail(`playwright-core is not installed in console/node_modules (run: make console/node_modules/.installed): ${e.message}`);
  }
  if (!existsSync(CHROMIUM)) {
    fail(`Chromium is not installed at ${CHROMIUM}. Install it with: apt-get install -y chromium (make chromium does this).`);
  }
  try {
    return await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
  } catch (e) {
    fail(`the browser could not start (${CHROMIUM}): ${e.message}`);
  }
}

let lastPage = null;

async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-GB', timezoneId: 'UTC' });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  lastPage = page;
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(`page error: ${e.message}`));
  // The browser logs every 4xx answer; those are the API refusing input, which the tests provoke.
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of 4\d\d/.test(m.text())) page.errors.push(`console error: ${m.text()}`);
  });
  page.offOrigin = [];
  page.on('request', (r) => {
    const url = r.url();
    if (!url.startsWith(server.base) && !url.startsWith('data:')) page.offOrigin.push(url);
  });
  return page;
}

async function signIn(page, key) {
  await page.goto(`${server.base}/`);
  await page.getByLabel('Workspace API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Campaigns', level: 1 }).waitFor();
}

async function shot(page, name, fullPage = true) {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `console-${name}.png`), fullPage });
}

/** Every visible form control on the page has an accessible name. */
async function assertLabelled(page, where) {
  const unlabelled = await page.evaluate(() => [...document.querySelectorAll('input, select, textarea')]
    .filter((el) => el.type !== 'hidden' && el.offsetParent !== null)
    .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
    .map((el) => el.outerHTML.slice(0, 120)));
  assert(unlabelled.length === 0, `${where}: controls without a label: ${unlabelled.join(' | ')}`);
}

/** Text of every visible element keeps 4.5:1 contrast with the background behind it (WCAG AA). */
async function assertContrast(page, where) {
  const low = await page.evaluate(() => {
    const parse = (c) => {
      const p = (/rgba?\(([^)]+)\)/.exec(c) || [null, '0,0,0,0'])[1].split(',').map(Number);
      return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
    };
    const lum = ({ r, g, b }) => {
      const f = (v) => { const x = v / 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const background = (el) => {
      for (let e = el; e; e = e.parentElement) {
        const c = parse(getComputedStyle(e).backgroundColor);
        if (c.a > 0) return c;
      }
      return { r: 255, g: 255, b: 255, a: 1 };
    };
    const out = [];
    for (const el of document.querySelectorAll('body *')) {
      if (el.closest('svg') || el.closest('[disabled]') || el.offsetParent === null) continue;
      if (![...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
      const [a, b] = [lum(parse(getComputedStyle(el).color)), lum(background(el))].sort((x, y) => y - x);
      const ratio = (a + 0.05) / (b + 0.05);
      if (ratio < 4.5) out.push(`<${el.tagName.toLowerCase()} class="${el.className}"> "${el.textContent.trim().slice(0, 30)}" ${ratio.toFixed(2)}:1`);
    }
    return out;
  });
  assert(low.length === 0, `${where}: text below 4.5:1 contrast: ${low.join(' | ')}`);
}

function assertClean(page, where) {
  assert(page.errors.length === 0, `${where}: ${page.errors.join('; ')}`);
  assert(page.offOrigin.length === 0, `${where}: requests left the origin: ${page.offOrigin.join(', ')}`);
}

async function scenario(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push({ name, ok: true, ms: Date.now() - t0 });
    console.log(`ok     ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  } catch (e) {
    results.push({ name, ok: false, ms: Date.now() - t0, error: e });
    if (lastPage) {
      const file = join(SHOTS, `failure-${results.length}.png`);
      mkdirSync(SHOTS, { recursive: true });
      await lastPage.screenshot({ path: file, fullPage: true }).then(() => console.log(`       screenshot of the failure: ${file}`), () => {});
    }
    console.log(`FAILED ${name}: ${e.stack || e.message}`);
  }
}

// ---------------------------------------------------------------------------------------
// Scenarios.

const shared = {};

/** Seed 002 from an empty workspace: create a webhook campaign, see the CSM message, the CSM
 * creates the token, refresh to see the masked token and cURL, send leads, activate, preview. */
async function onboarding() {
  const ws = newWorkspace('Seed 002 workspace');
  const page = await newPage();
  await signIn(page, ws.key);
  await assertLabelled(page, 'campaigns');
  assert(!page.url().includes(ws.key), 'the API key is never in the URL');
  assert(await page.evaluate(() => localStorage.length) === 0, 'nothing is kept in local storage');

  // Campaigns -> Standard -> Lead source: Webhook -> Save.
  await page.getByLabel('Campaign name').fill('Q3 outbound');
  await page.getByLabel('Campaign type').selectOption('standard');
  await page.getByLabel('Webhook', { exact: true }).check();
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await page.getByRole('heading', { name: 'Q3 outbound', level: 1 }).waitFor();
  const campaignId = /#\/campaigns\/(cmp_\w+)/.exec(page.url())[1];

  const csm = page.getByTestId('csm-message');
  await csm.waitFor();
  const csmText = await csm.innerText();
  assert(csmText.includes("Your organization doesn't have a webhook API key — contact CSM."), `the CSM message: ${csmText}`);
  assert(await page.getByTestId('example-curl').count() === 0, 'no cURL before the token exists');
  await shot(page, 'csm-message');

  // The CSM creates the token; the customer refreshes the page.
  const token = admin('admin', 'webhook-token', 'create', '--workspace', ws.id).token;
  await page.reload();
  const curl = page.getByTestId('example-curl');
  await curl.waitFor();
  const curlText = await curl.innerText();
  const ingestUrl = await page.getByTestId('ingest-url').innerText();
  assert(ingestUrl === `${server.base}/api/v1/webhook/leads`, `ingest URL: ${ingestUrl}`);
  assert(curlText.includes(ingestUrl) && curlText.includes(campaignId) && curlText.includes('idempotency_key'), `cURL: ${curlText}`);
  const masked = await page.getByTestId('masked-token').innerText();
  assert(!(await page.content()).includes(token), 'the full token is never shown');
  assert(masked.slice(-4) === token.slice(-4), `masked token ${masked} ends like the token`);
  assert(await csm.count() === 0, 'the CSM message is gone once the token exists');
  await shot(page, 'webhook-setup');

  // Send 25 leads as any API client would, to the URL the page shows.
  const leads = Array.from({ length: 25 }, (_, i) => ({
    name: `Lead ${i + 1}`, email: `lead${i + 1}@example.com`, company: i % 2 ? 'Acme' : 'Globex',
    position: i % 3 ? 'CTO' : 'VP Sales', linkedin: `https://www.linkedin.com/in/lead-${i + 1}`, campaign_id: campaignId,
  }));
  const sent = await call('POST', ingestUrl, { token, body: { idempotency_key: 'lead-batch-001', leads } });
  assert(sent.status === 202, `ingest: ${sent.status} ${sent.text}`);
  const requestId = sent.body.data.request_id;

  // Before activation the preview explains itself; after, the leads show with the request id.
  await page.getByTestId('lead-preview').getByRole('button', { name: 'Refresh' }).click();
  await page.getByText('Leads appear in the preview once the campaign has been activated').waitFor();
  await page.getByRole('button', { name: 'Activate' }).click();
  await page.getByRole('button', { name: 'Pause' }).waitFor();
  const rows = page.locator('[data-testid=lead-preview] tbody tr');
  await until('the first page of 20 leads', async () => (await rows.count()) === 20);
  const firstPage = await rows.allInnerTexts();
  assert(firstPage.every((t) => t.includes(`${requestId}_`)), `every lead shows the request id ${requestId} as its prefix`);
  assert(await page.locator('[data-testid=lead-preview] tbody .req').first().innerText() === requestId, 'the request id prefix is highlighted');
  await page.getByRole('button', { name: 'Next page' }).click();
  await until('the second page of 5 leads', async () => (await rows.count()) === 5);
  await page.getByRole('button', { name: 'Previous page' }).click();
  await until('back to the first page', async () => (await rows.count()) === 20);
  await shot(page, 'campaign');
  await assertContrast(page, 'campaign page');

  // A lead's feedback and event log.
  const leadId = sent.body.data.lead_ids[24]; // the newest: first on the first page
  const fb = await call('POST', '/api/v1/feedback/events', {
    key: ws.key, body: { lead_id: leadId, event_type: 'positive_reply', source: 'webhook', content: 'Interested, send me more details.' },
  });
  assert(fb.status === 200, `feedback: ${fb.text}`);
  await page.locator(`tr[data-lead-id="${leadId}"] a`).click();
  await page.getByRole('heading', { name: 'Lead · Lead 25', level: 1 }).waitFor();
  await page.getByTestId('event-log').getByText('positive reply').waitFor();
  const feedback = await page.getByTestId('lead-feedback').innerText();
  assert(feedback.includes('positive') && feedback.includes('Interested, send me more details.'), `feedback panel: ${feedback}`);
  await shot(page, 'lead');
  assertClean(page, 'onboarding');
  Object.assign(shared, { ws, page, campaignId, token, leadIds: sent.body.data.lead_ids });
}

/** Seed 003: create a webhook through the form, send a test, see a delivery and redeliver it. */
async function outboundWebhooks() {
  const ws = newWorkspace('Seed 003 workspace');
  const token = admin('admin', 'webhook-token', 'create', '--workspace', ws.id).token;
  const cmp = await call('POST', '/api/v1/campaigns', { key: ws.key, body: { name: 'Hooks', type: 'standard', lead_source: 'webhook' } });
  const page = await newPage();
  await signIn(page, ws.key);
  await page.getByRole('link', { name: 'Webhooks' }).click();
  await page.getByRole('link', { name: 'New webhook' }).click();
  await page.getByLabel('Name').fill('Lead Tracking Webhook');
  await page.getByLabel('Notification URL').fill(`${receiver.url}/webhooks/leads`);
  await page.getByLabel('HTTP method').selectOption('POST');
  await page.getByRole('button', { name: 'Add header' }).click();
  await page.getByLabel('Header 1 name').fill('Authorization');
  await page.getByLabel('Header 1 value').fill('Bearer receiver-token');
  assert(await page.getByLabel('Enabled').isChecked(), 'a new webhook starts enabled');
  await assertLabelled(page, 'webhook form');
  await page.getByRole('button', { name: 'Save', exact: true }).click();

  const secret = await page.getByTestId('secret').innerText();
  assert(secret.startsWith('whsec_'), `the signing secret is shown once: ${secret}`);
  await shot(page, 'webhook-created');
  await page.getByRole('link', { name: 'Go to the webhook' }).click();
  await page.getByRole('heading', { name: 'Lead Tracking Webhook', level: 1 }).waitFor();
  assert(!(await page.content()).includes(secret), 'the secret is not shown again');
  assert(!(await page.content()).includes('receiver-token'), 'header values are masked');

  // Send a test: the receiver answers 200.
  const before = receiver.requests.length;
  await page.getByRole('button', { name: 'Send test' }).click();
  const test = await page.getByTestId('test-result').innerText();
  assert(test.includes('Test delivered') && test.includes('HTTP 200'), `test result: ${test}`);
  assert(receiver.requests.length > before, 'the receiver got the test');

  // A lead saved in a campaign produces a save_lead delivery in the log.
  const sent = await call('POST', '/api/v1/webhook/leads', {
    token, body: { idempotency_key: 'hook-1', leads: [{ name: 'Dana', email: 'dana@example.com', campaign_id: cmp.body.data.id }] },
  });
  assert(sent.status === 202, `ingest: ${sent.text}`);
  const leadId = sent.body.data.lead_ids[0];
  const log = page.getByTestId('delivery-log');
  const row = log.locator('tbody tr').filter({ hasText: 'delivered' });
  await until('a delivered save_lead in the delivery log', async () => {
    await log.getByRole('button', { name: 'Refresh' }).click();
    try { await row.first().waitFor({ timeout: 300 }); return true; } catch { return false; }
  });
  const rowText = await row.first().innerText();
  assert(rowText.includes('save_lead') && rowText.includes('HTTP 200') && rowText.includes('{"ok":true}'), `delivery row: ${rowText}`);
  const got = receiver.requests.find((r) => r.body.includes(leadId));
  assert(got && got.headers.authorization === 'Bearer receiver-token' && got.headers['webhook-signature'], 'the receiver got the signed notification with our header');
  await shot(page, 'webhook');
  await assertContrast(page, 'webhook page');

  // Redeliver it: the receiver gets it again.
  const copies = () => receiver.requests.filter((r) => r.body.includes(leadId)).length;
  const n = copies();
  await row.first().getByRole('button', { name: /Redeliver/ }).click();
  await page.getByText('Redelivery of').waitFor();
  await until('the redelivered notification', async () => copies() > n);

  // The enable toggle, then rotation (shown once).
  const toggle = page.getByRole('switch');
  await toggle.click();
  await until('the webhook disabled', async () => (await toggle.getAttribute('aria-checked')) === 'false');
  const hooks = await call('GET', '/api/v1/webhooks', { key: ws.key });
  assert(hooks.body.data[0].enabled === false, 'the toggle disabled it through the API');
  await toggle.click();
  await until('the webhook enabled again', async () => (await toggle.getAttribute('aria-checked')) === 'true');
  page.once('dialog', (d) => d.accept());
  await page.getByRole('button', { name: 'Rotate secret' }).click();
  const rotated = await page.getByTestId('secret').innerText();
  assert(rotated.startsWith('whsec_') && rotated !== secret, 'rotation shows a new secret once');

  // An endpoint whose deliveries fail every retry is disabled; the page says why.
  const broken = await call('POST', '/api/v1/webhooks', {
    key: ws.key, body: { name: 'Broken receiver', url: `${receiver.url}/fail`, method: 'POST', events: ['save_lead'] },
  });
  assert(broken.status === 201, broken.text);
  const again = await call('POST', '/api/v1/webhook/leads', {
    token, body: { idempotency_key: 'hook-2', leads: [{ name: 'Eve', campaign_id: cmp.body.data.id }] },
  });
  assert(again.status === 202, again.text);
  const reason = await until('the broken endpoint auto-disabled', async () => {
    const r = await call('GET', `/api/v1/webhooks/${broken.body.data.id}`, { key: ws.key });
    return r.body.data.enabled === false && r.body.data.disabled_reason;
  }, 30000);
  await page.goto(`${server.base}/#/webhooks/${broken.body.data.id}`);
  const shown = await page.getByTestId('disabled-reason').innerText();
  assert(shown.includes(reason), `the disable reason "${reason}" is shown: ${shown}`);
  assert((await page.getByRole('switch').getAttribute('aria-checked')) === 'false', 'the toggle shows it disabled');
  const failedRow = page.getByTestId('delivery-log').locator('tbody tr').filter({ hasText: 'failed' }).first();
  await failedRow.waitFor();
  const failedText = await failedRow.innerText();
  assert(failedText.includes('HTTP 500') && failedText.includes('receiver is down') && failedText.includes('4'), `failed delivery row: ${failedText}`);
  await shot(page, 'webhook-disabled');
  assertClean(page, 'outbound webhooks');
}

/** A failing form shows the API's own validation message beside its field. */
async function validation() {
  const ws = newWorkspace('Validation workspace');
  const page = await newPage();
  await signIn(page, ws.key);
  await page.goto(`${server.base}/#/webhooks/new`);
  await page.getByLabel('Name').fill('Bad hook');
  await page.getByLabel('Notification URL').fill('ftp://example.com/hook');
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  const expected = await call('POST', '/api/v1/webhooks', {
    key: ws.key, body: { name: 'Bad hook', url: 'ftp://example.com/hook', method: 'POST', enabled: true, events: ['save_lead'] },
  });
  assert(expected.status === 400 && expected.body.error.field === 'url', `the API refuses it: ${expected.text}`);
  const beside = page.locator('#webhook-url-error');
  await beside.waitFor();
  assert(await beside.innerText() === expected.body.error.message, `beside the URL: "${await beside.innerText()}" vs "${expected.body.error.message}"`);
  assert(await page.getByLabel('Notification URL').getAttribute('aria-invalid') === 'true', 'the URL field is marked invalid');
  assert((await page.getByLabel('Notification URL').getAttribute('aria-describedby')).includes('webhook-url-error'), 'the message describes the field');

  // A header Leadpush sets itself: the message goes beside the headers.
  await page.getByLabel('Notification URL').fill(`${receiver.url}/x`);
  await page.getByRole('button', { name: 'Add header' }).click();
  await page.getByLabel('Header 1 name').fill('Content-Type');
  await page.getByLabel('Header 1 value').fill('text/plain');
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  const headerErr = page.locator('#webhook-headers-error');
  await headerErr.waitFor();
  const headerText = await headerErr.innerText();
  assert(/content-type/i.test(headerText) && headerText.includes('cannot be configured'), `beside the headers: ${headerText}`);
  assert(await page.locator('#webhook-url-error').count() === 0, 'the URL error is gone once the URL is fixed');
  await shot(page, 'validation');
  await assertContrast(page, 'failing form');

  // Sign-in with a wrong key explains itself beside the key field.
  const other = await newPage();
  await other.goto(`${server.base}/`);
  await other.getByLabel('Workspace API key').fill('lp_key_wrong');
  await other.getByRole('button', { name: 'Sign in' }).click();
  await other.locator('#api-key-error').waitFor();
  assert((await other.locator('#api-key-error').innerText()).length > 10, 'a wrong key is explained');
  await other.context().close();
  assertClean(page, 'validation');
}

/** Integrations (masked keys), pushing selected leads with per-lead outcome, insights as a
 * chart, the API reference offline, and signing out. Reuses the onboarding scenario's workspace. */
async function integrationsPushInsightsDocs() {
  assert(shared.page, 'needs the onboarding scenario');
  const { ws, page, campaignId, leadIds } = shared;

  await page.getByRole('link', { name: 'Integrations' }).click();
  const hey = page.getByTestId('integration-heyreach');
  await hey.getByLabel('API key').fill('hr-secret-key-9876');
  await hey.getByLabel('Lead list ID').fill('614694');
  await hey.getByRole('button', { name: 'Save HeyReach' }).click();
  await until('the masked HeyReach key', async () => (await hey.getByTestId('masked-key').count()) === 1);
  const masked = await hey.getByTestId('masked-key').innerText();
  assert(masked.endsWith('9876') && !(await page.content()).includes('hr-secret-key-9876'), `masked key: ${masked}`);
  await assertLabelled(page, 'integrations');
  await shot(page, 'integrations');

  // Push two selected leads from the lead preview to a webhook URL.
  await page.goto(`${server.base}/#/campaigns/${campaignId}`);
  const preview = page.getByTestId('lead-preview');
  await preview.locator('tbody tr').first().waitFor();
  const chosen = [leadIds[24], leadIds[23]];
  for (const id of chosen) await page.getByLabel(`Select lead ${id}`).check();
  await preview.getByRole('button', { name: 'Push selected (2)' }).click();
  await page.getByRole('heading', { name: 'Push leads', level: 1 }).waitFor();
  await page.getByRole('textbox', { name: 'Webhook URL' }).fill(`${receiver.url}/push`);
  await page.getByRole('button', { name: 'Push 2 leads' }).click();
  await page.getByRole('heading', { name: 'Push result', level: 1 }).waitFor();
  const outcomes = page.getByTestId('push-outcomes').locator('tbody tr');
  await until('two per-lead outcomes', async () => (await outcomes.count()) === 2);
  for (const id of chosen) {
    const text = await page.locator(`[data-testid=push-outcomes] tr[data-lead-id="${id}"]`).innerText();
    assert(text.includes('pushed'), `outcome of ${id}: ${text}`);
  }
  assert((await page.getByTestId('push-summary').innerText()).includes('dispatched'), 'the push is dispatched');
  assert(receiver.requests.some((r) => r.path === '/push' && chosen.every((id) => r.body.includes(id))), 'the receiver got both leads');
  await assertLabelled(page, 'push');
  await shot(page, 'push');

  // Outcomes for insights, then the chart.
  // Lead 25 already has a positive reply (the onboarding scenario); lead 24 replies and books a meeting.
  for (const type of ['reply', 'meeting_booked']) {
    const r = await call('POST', '/api/v1/feedback/events', { key: ws.key, body: { lead_id: leadIds[23], event_type: type, source: 'webhook' } });
    assert(r.status === 200, r.text);
  }
  await page.getByRole('link', { name: 'Insights' }).click();
  await page.getByLabel('Group outcomes by').selectOption('source');
  const chart = page.getByTestId('insights-chart');
  const label = await until('the chart by source', async () => {
    const text = (await chart.count()) ? await chart.getAttribute('aria-label') : '';
    return text && text.includes('webhook:') ? text : null;
  });
  assert(label.includes('webhook: Reply rate 100.0%, Positive rate 100.0%, Meeting rate 50.0%'), `the chart's rates per source: ${label}`);
  assert(await chart.locator('rect').count() >= 3, 'the chart draws bars');
  await page.getByLabel('Group outcomes by').selectOption('position');
  await until('the chart by title', async () => /cto|vp sales/.test((await chart.getAttribute('aria-label')) || ''));
  await shot(page, 'insights');
  await assertContrast(page, 'insights');

  // The API reference renders the served document, offline.
  await page.goto(`${server.base}/docs`);
  await page.getByText('Leadpush API').first().waitFor();
  await page.locator('.opblock-summary-path', { hasText: '/api/v1/campaigns' }).first().waitFor();
  await shot(page, 'docs', false);

  // Signing out forgets the key.
  await page.goto(`${server.base}/#/campaigns`);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in to Leadpush' }).waitFor();
  assert(await page.evaluate(() => sessionStorage.length) === 0, 'signing out clears session storage');
  assertClean(page, 'integrations, push, insights, docs');
}

/** Keyboard only: sign in, move through the navigation, land on the new screen's heading. */
async function keyboard() {
  const ws = newWorkspace('Keyboard workspace');
  const page = await newPage();
  await page.goto(`${server.base}/`);
  await page.getByRole('heading', { name: 'Sign in to Leadpush' }).waitFor();
  const focused = () => page.evaluate(() => {
    const el = document.activeElement;
    return el ? { id: el.id, tag: el.tagName, text: el.textContent.trim() } : {};
  });
  await until('the key field focused by Tab', async () => {
    await page.keyboard.press('Tab');
    return (await focused()).id === 'api-key';
  });
  await page.keyboard.type(ws.key);
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Campaigns', level: 1 }).waitFor();
  const skip = await until('the skip link first in the tab order', async () => {
    await page.keyboard.press('Tab');
    const f = await focused();
    return f.tag === 'A' || f.tag === 'BUTTON' ? f : null;
  });
  assert(skip.text === 'Skip to content', `the first stop is the skip link, not ${skip.text}`);
  await until('the Webhooks link by Tab', async () => {
    await page.keyboard.press('Tab');
    return (await focused()).text === 'Webhooks';
  });
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Webhooks', level: 1 }).waitFor();
  await until('focus on the new heading', async () => (await focused()).tag === 'H1');
  assert((await focused()).text === 'Webhooks', 'focus moved to the Webhooks heading');
  // The contrast check itself catches pale text.
  await page.evaluate(() => {
    const p = document.createElement('p');
    p.id = 'pale';
    p.textContent = 'pale text';
    p.style.color = '#bbbbbb';
    document.querySelector('main').append(p);
  });
  const caught = await assertContrast(page, 'pale').then(() => null, (e) => e.message);
  assert(caught && caught.includes('pale text'), 'the contrast check flags 2:1 text');
  await page.evaluate(() => document.getElementById('pale').remove());
  await assertContrast(page, 'webhooks list');
  assertClean(page, 'keyboard');
  await page.context().close();
}

/** Seed 004: workspace limits, an endpoint with its Test, a campaign workflow (Fetch API Data,
 * then a generated message) whose message shows in the lead preview and the lead's runs. */
async function apiRequestsAndWorkflow() {
  const ws = newWorkspace('Seed 004 workspace');
  const token = admin('admin', 'webhook-token', 'create', '--workspace', ws.id).token;
  const page = await newPage();
  await signIn(page, ws.key);
  await page.getByRole('link', { name: 'API Requests' }).click();
  await page.getByRole('heading', { name: 'API Requests', level: 1 }).waitFor();

  // The workspace limits, as the API reports them; then lowered through the form.
  const settings = (await call('GET', '/api/v1/workspace/settings', { key: ws.key })).body.data;
  const limits = page.getByTestId('workspace-limits');
  await limits.getByTestId('limit-timeout').waitFor();
  assert((await limits.getByTestId('limit-timeout').innerText()).startsWith(`${settings.api_request_max_timeout_ms} ms`), 'the timeout limit is shown');
  assert((await limits.getByTestId('limit-response').innerText()).startsWith(`${settings.api_request_max_response_bytes} bytes`), 'the response limit is shown');
  await limits.getByRole('button', { name: 'Change limits' }).click();
  await page.getByLabel('Longest timeout (ms)').fill('99999999');
  await limits.getByRole('button', { name: 'Save limits' }).click();
  const limitErr = page.locator('#limit-timeout-ms-error');
  await limitErr.waitFor();
  assert((await limitErr.innerText()).includes('api_request_max_timeout_ms'), 'an out-of-range limit is refused beside its field');
  await page.getByLabel('Longest timeout (ms)').fill('5000');
  await limits.getByRole('button', { name: 'Save limits' }).click();
  await until('the new limit shown', async () => (await limits.getByTestId('limit-timeout').count()) === 1
    && (await limits.getByTestId('limit-timeout').innerText()).startsWith('5000 ms'));

  // A new endpoint through the form.
  await page.getByLabel('Name', { exact: true }).fill('Customer profile');
  await page.getByLabel('Method').selectOption('GET');
  await page.getByLabel('URL template').fill(`${receiver.url}/profile/{{ contact.email }}`);
  await page.getByRole('button', { name: 'Add header' }).click();
  await page.getByLabel('Headers 1 name').fill('X-Api-Key');
  await page.getByLabel('Headers 1 value').fill('profile-secret-key');
  await assertLabelled(page, 'API requests');
  await page.getByRole('button', { name: 'Save API request' }).click();
  const endpointRow = page.getByTestId('endpoints').locator('tbody tr').filter({ hasText: 'Customer profile' });
  await endpointRow.waitFor();

  // A lead for the templates: one lead of a webhook campaign (not active yet).
  const cmp = (await call('POST', '/api/v1/campaigns', { key: ws.key, body: { name: 'Workflow campaign', type: 'standard', lead_source: 'webhook' } })).body.data;
  const sent = await call('POST', '/api/v1/webhook/leads', {
    token, body: { idempotency_key: 'wf-1', leads: [{ name: 'Alice', email: 'alice@example.com', campaign_id: cmp.id }] },
  });
  assert(sent.status === 202, sent.text);

  // The Test button: without a lead the template cannot render, and the page says why;
  // with one, the rendered request (secret masked) and the JSON answer.
  await endpointRow.getByRole('button', { name: 'Test Customer profile' }).click();
  const testPanel = page.getByTestId('test-panel');
  await testPanel.getByRole('button', { name: 'Send test request' }).click();
  await testPanel.getByText('template_error').waitFor();
  assert((await testPanel.innerText()).includes('contact.email'), 'the template error names the variable');
  await testPanel.getByLabel('Lead id for the template variables (optional)').fill(sent.body.data.lead_ids[0]);
  await testPanel.getByRole('button', { name: 'Send test request' }).click();
  const rendered = page.getByTestId('rendered-request');
  await rendered.waitFor();
  const renderedText = await rendered.innerText();
  assert(renderedText.startsWith(`GET ${receiver.url}/profile/`) && !renderedText.includes('profile-secret-key'), `rendered request: ${renderedText}`);
  assert((await page.getByTestId('test-response').innerText()).includes('"plan": "pro"'), 'the JSON answer is shown');
  await shot(page, 'api-requests');
  await assertContrast(page, 'API requests');

  // The workflow editor: a template reading an output no step produces is refused at its step.
  const endpointId = await endpointRow.getAttribute('data-api-request-id');
  await page.goto(`${server.base}/#/campaigns/${cmp.id}`);
  const editor = page.getByTestId('workflow-editor');
  await editor.getByText('No steps yet').waitFor();
  await editor.getByLabel('Type of step to add').selectOption('fetch_api_data');
  await editor.getByRole('button', { name: 'Add step' }).click();
  await editor.getByLabel('API request').selectOption(endpointId);
  await editor.getByLabel('Output key').fill('customer_profile');
  await editor.getByLabel('Type of step to add').selectOption('render_message');
  await editor.getByRole('button', { name: 'Add step' }).click();
  await editor.getByLabel('Message template').fill('Hi {{ contact.name }}, you are on {{ workflow.nope.plan }}');
  await editor.getByRole('button', { name: 'Save workflow' }).click();
  const stepErr = editor.locator('#step-1-error');
  await stepErr.waitFor();
  assert((await stepErr.innerText()).includes('nodes[1]'), `the error names the second step: ${await stepErr.innerText()}`);
  await editor.getByLabel('Message template').fill('Hi {{ contact.name }}, you are on {{ workflow.customer_profile.plan }}');
  // A find-email step with a broken input template is refused at its step, then removed.
  await editor.getByLabel('Type of step to add').selectOption('find_email');
  await editor.getByRole('button', { name: 'Add step' }).click();
  await editor.getByLabel('Domain template (optional)').fill('{{ contact.website');
  await editor.getByRole('button', { name: 'Save workflow' }).click();
  const findErr = editor.locator('#step-2-error');
  await findErr.waitFor();
  assert((await findErr.innerText()).includes('nodes[2]'), `the error names the find-email step: ${await findErr.innerText()}`);
  await editor.getByRole('button', { name: 'Remove step 3' }).click();
  await editor.getByRole('button', { name: 'Save workflow' }).click();
  await editor.getByText('Saved as version 1').waitFor();
  await assertLabelled(page, 'workflow editor');
  await shot(page, 'workflow');

  // After activation the lead's run generates the message, shown in the preview.
  await page.getByRole('button', { name: 'Activate' }).click();
  await page.getByRole('button', { name: 'Pause' }).waitFor();
  const preview = page.getByTestId('lead-preview');
  await until('the generated message in the preview', async () => {
    await preview.getByRole('button', { name: 'Refresh' }).click();
    try {
      await preview.getByTestId('preview-message').filter({ hasText: 'Hi Alice, you are on pro' }).waitFor({ timeout: 300 });
      return true;
    } catch { return false; }
  }, 30000);
  await shot(page, 'campaign-messages');
  const profileCall = receiver.requests.find((r) => r.path === '/profile/alice%40example.com' || r.path === '/profile/alice@example.com');
  assert(profileCall && profileCall.headers['x-api-key'] === 'profile-secret-key', 'the workflow called the endpoint with its header');

  // The lead's runs: the latest with its message and steps; run it again.
  await preview.locator('tbody a').first().click();
  const runs = page.getByTestId('workflow-runs');
  await runs.getByTestId('run-message').filter({ hasText: 'Hi Alice, you are on pro' }).waitFor();
  assert((await runs.getByTestId('latest-run').innerText()).includes('customer_profile'), 'the run shows its steps and outputs');
  await runs.getByRole('button', { name: 'Run again' }).click();
  await runs.getByText(/Run wfr_\w+ queued/).waitFor();
  await shot(page, 'lead-run');
  assertClean(page, 'API requests and workflow');
  await page.context().close();
}

/** Enrichment forms: the phone validator's answer, and the API's message beside a field. */
async function enrichment() {
  const ws = newWorkspace('Enrichment workspace');
  const page = await newPage();
  await signIn(page, ws.key);
  await page.getByRole('link', { name: 'Enrichment' }).click();
  await page.getByRole('heading', { name: 'Enrichment', level: 1 }).waitFor();
  // This month's usage, as the account route tells it.
  const account = await call('GET', '/api/v1/account', { key: ws.key });
  assert(account.status === 200, account.text);
  const used = page.getByTestId('usage-verifications');
  await used.waitFor();
  const usedText = await used.innerText();
  const quota = account.body.data.requests.verifications.available.toLocaleString('en-US');
  assert(usedText.startsWith(`0 of ${quota}`) && usedText.includes('10/s, 300/min'), `usage: ${usedText}`);
  const phone = page.getByTestId('tool-phone-validator');
  await phone.getByLabel('Phone', { exact: false }).first().fill('+1 415 555 2671');
  await phone.getByRole('button', { name: 'Run' }).click();
  const expected = await call('GET', '/api/v1/phone-validator?phone=%2B1%20415%20555%202671', { key: ws.key });
  assert(expected.status === 200, expected.text);
  const result = phone.getByTestId('result');
  await result.waitFor();
  const text = await result.innerText();
  assert(text.includes(expected.body.data.e164) && text.includes(expected.body.data.line_type), `phone result: ${text}`);
  const verifier = page.getByTestId('tool-email-verifier');
  await verifier.getByRole('button', { name: 'Run' }).click();
  const emailErr = verifier.locator('#email-verifier-email-error');
  await emailErr.waitFor();
  const apiErr = await call('GET', '/api/v1/email-verifier', { key: ws.key });
  assert(await emailErr.innerText() === apiErr.body.error.message, `beside the email: ${await emailErr.innerText()}`);
  // Finders get their forms from the API document too; an empty one shows the API's message.
  const finderErr = await call('GET', '/api/v1/email-finder', { key: ws.key });
  assert(finderErr.status === 400, `the email finder refuses an empty query: ${finderErr.text}`);
  const finder = page.getByTestId('tool-email-finder');
  await finder.getByRole('button', { name: 'Run' }).click();
  await finder.getByText(finderErr.body.error.message).first().waitFor();
  // Bulk verification: a job followed until it completes (addresses that fail the syntax
  // check need no network), then the API's message for an empty list.
  const bulk = page.getByTestId('tool-bulk-verify');
  await bulk.getByLabel('Addresses').fill('not-an-email\nann@@example..com');
  await bulk.getByRole('button', { name: 'Start job' }).click();
  const job = bulk.getByTestId('bulk-job');
  await job.getByText('completed').first().waitFor({ timeout: 30000 });
  const jobText = await job.innerText();
  assert(jobText.includes('2 of 2 checked') && jobText.includes('not-an-email') && jobText.includes('ann@@example..com'), `bulk job: ${jobText}`);
  // The job's two addresses are two verifications of the month.
  await page.getByTestId('usage').getByRole('button', { name: 'Refresh' }).click();
  await page.getByTestId('usage-verifications').getByText(`2 of ${quota}`).waitFor();
  await bulk.getByLabel('Addresses').fill('');
  await bulk.getByRole('button', { name: 'Start job' }).click();
  const bulkErr = await call('POST', '/api/v1/email-verifier/bulk', { key: ws.key, body: { emails: [] } });
  assert(bulkErr.status === 400, `an empty job is refused: ${bulkErr.text}`);
  await bulk.getByText(bulkErr.body.error.message).first().waitFor();
  await assertLabelled(page, 'enrichment');
  await assertContrast(page, 'enrichment');
  await shot(page, 'enrichment');
  assertClean(page, 'enrichment');
  await page.context().close();
}

// ---------------------------------------------------------------------------------------

/** Learned scores: outcomes of pushed leads score the rest; the preview and the lead page show it; the insights page charts a title's weekly reply rate. */
async function leadScores() {
  const ws = newWorkspace('Scores workspace');
  const token = admin('admin', 'webhook-token', 'create', '--workspace', ws.id).token;
  const cmp = await call('POST', '/api/v1/campaigns', { key: ws.key, body: { name: 'Scored', type: 'standard', lead_source: 'webhook' } });
  const campaignId = cmp.body.data.id;
  const act = await call('POST', `/api/v1/campaigns/${campaignId}/activate`, { key: ws.key });
  assert(act.status === 200, `activate: ${act.text}`);
  // 20 VP Sales and 20 junior accountants pushed; the last two of each kind are not.
  const leads = Array.from({ length: 24 }, (_, i) => ({
    name: `Scored ${i + 1}`, position: i % 2 ? 'Junior Accountant' : 'VP Sales', company: i % 2 ? 'Globex' : 'Acme', campaign_id: campaignId,
  }));
  const sent = await call('POST', '/api/v1/webhook/leads', { token, body: { idempotency_key: 'scores-001', leads } });
  assert(sent.status === 202, `ingest: ${sent.text}`);
  const ids = sent.body.data.lead_ids;
  const push = await call('POST', '/api/v1/leads/push', { key: ws.key, body: { lead_ids: ids.slice(0, 20), destination: 'webhook_url', webhook_url: `${receiver.url}/push` } });
  assert(push.status === 200, `push: ${push.text}`);
  await until('the pushed leads marked', async () => (await call('GET', `/api/v1/leads/${ids[19]}`, { key: ws.key })).body.data.pushed_at);
  for (const [i, event] of [[0, 'positive_reply'], [2, 'positive_reply'], [4, 'meeting_booked'], [6, 'positive_reply'], [1, 'bounce'], [3, 'bounce']]) {
    const r = await call('POST', '/api/v1/feedback/events', { key: ws.key, body: { lead_id: ids[i], event_type: event, source: 'webhook' } });
    assert(r.status === 200, `feedback: ${r.text}`);
  }
  await until('the model fitted on every outcome', async () => {
    const m = (await call('GET', '/api/v1/insights/model', { key: ws.key })).body.data;
    return m.status === 'ready' && m.positive === 4;
  });
  await until('the unpushed leads scored', async () => (await call('GET', `/api/v1/leads/${ids[21]}`, { key: ws.key })).body.data.predicted_score !== null);
  const vp = (await call('GET', `/api/v1/leads/${ids[22]}`, { key: ws.key })).body.data;

  const page = await newPage();
  await signIn(page, ws.key);
  await page.goto(`${server.base}/#/campaigns/${campaignId}`);
  const cell = page.locator(`[data-testid=lead-preview] tr[data-lead-id="${ids[22]}"] [data-testid=preview-score]`);
  await cell.waitFor();
  const shown = await cell.innerText();
  assert(shown === `${(vp.predicted_score * 100).toFixed(1)}%`, `preview score ${shown} for ${vp.predicted_score}`);
  assert((await cell.getAttribute('title')) === vp.score_reasons[0].message, 'the main reason is the tooltip');
  await page.locator(`tr[data-lead-id="${ids[22]}"] a`).click();
  const panel = page.getByTestId('lead-score');
  await panel.waitFor();
  const text = await panel.innerText();
  assert(text.includes(shown) && text.includes('executive'), `score panel: ${text}`);
  await assertContrast(page, 'lead score');

  // The weekly trend of a title, as the API computed it with the scores.
  const trends = await until('the trends computed', async () => {
    const t = (await call('GET', '/api/v1/insights/trends?group_by=position', { key: ws.key })).body.data;
    return t.updated_at && t.groups.some((g) => g.key === 'vp sales') ? t : null;
  });
  const thisWeek = trends.groups.find((g) => g.key === 'vp sales').weeks.at(-1);
  assert(thisWeek.exposed === 10 && thisWeek.replied >= 3, `this week's VP Sales leads: ${JSON.stringify(thisWeek)}`);
  await page.getByRole('link', { name: 'Insights' }).click();
  await page.getByLabel('Group', { exact: true }).selectOption('vp sales');
  const trend = page.getByTestId('trend-chart');
  const trendLabel = await until('the trend chart of vp sales', async () => {
    const label = (await trend.count()) ? await trend.getAttribute('aria-label') : '';
    return label && label.includes('of vp sales') ? label : null;
  });
  const expected = `week of ${thisWeek.week}: ${(thisWeek.reply_rate * 100).toFixed(1)}% of 10`;
  assert(trendLabel.includes(expected), `the trend chart says ${trendLabel}, want ${expected}`);
  assert(await trend.locator('circle').count() >= 1, 'the chart marks the week');
  const unknown = await call('GET', '/api/v1/insights/trends?group_by=title', { key: ws.key });
  assert(unknown.status === 400 && unknown.body.error.field === 'group_by', `an unknown grouping is refused: ${unknown.text}`);
  await assertContrast(page, 'insights trend');
  assertClean(page, 'lead scores');
}

async function main() {
  await scenario('vendored files are the pinned npm packages\' own', async () => {
    const problems = checkVendor();
    assert(problems.length === 0, problems.join('; '));
  });
  try {
    server = await startServer();
    receiver = await startReceiver();
    browser = await launchBrowser();
  } catch (e) {
    results.push({ name: 'start server, receiver and browser', ok: false, error: e });
    console.log(`FAILED start: ${e.message}`);
  }
  if (browser) {
    await scenario('onboarding: empty workspace to previewed leads (CSM message, token, cURL, activation, paging)', onboarding);
    await scenario('outbound webhooks: webhook form, test send, delivery log and redelivery, toggle, rotation', outboundWebhooks);
    await scenario('a failing form shows the API validation message beside its field', validation);
    await scenario('keyboard only: sign in, navigate, focus follows', keyboard);
    await scenario('API requests and workflows: workspace limits, endpoint Test, workflow editor, generated message in preview and runs', apiRequestsAndWorkflow);
    await scenario('enrichment forms: phone validator result, API messages of the verifier and the email finder', enrichment);
    await scenario('integrations masked, push with per-lead outcome, insights chart, /docs offline, sign-out', integrationsPushInsightsDocs);
    await scenario('learned lead scores in the lead preview and on the lead page, and a title\'s weekly trend', leadScores);
  }
  if (browser) await browser.close().catch(() => {});
  if (receiver) receiver.srv.close();
  if (server) {
    server.child.stdin.end();
    await new Promise((ok) => { const t = setTimeout(() => { server.child.kill('SIGKILL'); ok(); }, 10000); server.child.on('exit', () => { clearTimeout(t); ok(); }); });
  }
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  const failed = results.filter((r) => !r.ok);
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`console browser tests: ${results.length - failed.length} passed, ${failed.length} failed in ${secs} s (screenshots in ${SHOTS})`);
  process.exit(failed.length ? 1 : 0);
}

main().catch((e) => {
  console.log(`FAILED runner: ${e.stack || e.message}`);
  console.log('console browser tests: runner crashed');
  process.exit(1);
});
