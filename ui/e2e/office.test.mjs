// Head office's pages end to end: the page the real sync server serves at / (`--web-dir
// ui/dist`), in real headless Chromium driven by playwright-core, against real PostgreSQL.
//
// scripts/e2e-office.sh makes the database, the businesses and the server, then runs this with:
//   KAUNTER_SERVER_URL        the sync server, serving the built ui/dist (required)
//   KAUNTER_DATABASE_URL      a superuser URL of the server's database: the test makes one desk
//                             look long gone and ends the subscription with psql (required)
//   KAUNTER_ADMIN_SLUG, KAUNTER_ADMIN_EMAIL, KAUNTER_ADMIN_PASSWORD  business A's ADMIN
//   KAUNTER_TENANT_ID         business A's tenant id
//   KAUNTER_BUSINESS_NAME, KAUNTER_BRANCH_NAME, KAUNTER_SECOND_BRANCH_NAME  business A's
//   KAUNTER_ENROL_CODE_1, KAUNTER_ENROL_CODE_2  codes for a desk of each of A's branches
//   KAUNTER_PAYMENT_REFERENCE, KAUNTER_PAYMENT_AMOUNT_SEN  the bank transfer recorded for A
//                             with `sync-server admin record-payment`
//   KAUNTER_OTHER_BUSINESS_NAME, KAUNTER_OTHER_BRANCH_NAME, KAUNTER_OTHER_TENANT_ID,
//   KAUNTER_OTHER_ENROL_CODE, KAUNTER_OTHER_PAYMENT_REFERENCE  business B, whose data must
//                             never appear on A's page
//   KAUNTER_CHROMIUM          the browser (default /usr/bin/chromium)
// The test also signs a third business up itself (POST /v1/signup), to check that A's change
// of modules leaves another business's subscription as it was.
//   KAUNTER_E2E_SCREENSHOT_DIR  where screenshots go (default: a new temporary folder); one is
//                             taken at the end and one on failure, and their paths printed
//
// Run: node --test ui/e2e/office.test.mjs

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { chromium } from "playwright-core";

const STEP_TIMEOUT_MS = 15_000;

function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required (scripts/e2e-office.sh sets it)`);
  return value;
}

const SERVER = env("KAUNTER_SERVER_URL").replace(/\/+$/, "");
const A = {
  slug: env("KAUNTER_ADMIN_SLUG"),
  email: env("KAUNTER_ADMIN_EMAIL"),
  password: env("KAUNTER_ADMIN_PASSWORD"),
  tenantId: env("KAUNTER_TENANT_ID"),
  name: env("KAUNTER_BUSINESS_NAME"),
  branch: env("KAUNTER_BRANCH_NAME"),
  secondBranch: env("KAUNTER_SECOND_BRANCH_NAME"),
  paymentReference: env("KAUNTER_PAYMENT_REFERENCE"),
  paymentAmountSen: Number(env("KAUNTER_PAYMENT_AMOUNT_SEN")),
};
const B = {
  name: env("KAUNTER_OTHER_BUSINESS_NAME"),
  branch: env("KAUNTER_OTHER_BRANCH_NAME"),
  tenantId: env("KAUNTER_OTHER_TENANT_ID"),
  paymentReference: env("KAUNTER_OTHER_PAYMENT_REFERENCE"),
  deskName: "Meja Rahsia Syarikat B",
  deskError: "B-ONLY: disk full on the other business's desk",
};
const DESK_1 = "Meja Depan 1";
const DESK_2 = "Meja PJ 2";
const DESK_1_ERROR = "Connection reset by peer (os error 104)";
const RECEPTIONIST = { name: "Rina Penyambut", email: `rina@${A.slug}.my`, password: "bunga raya kembang pagi" };
const PATIENT_NAME = "Aminah binti Yusof";
const EMERGENCY_REASON = "Unconscious on arrival; allergies needed before treatment";
const REVIEW_NOTE = "No emergency: the patient was awake and walked in";
/** kaunter-core's price list: GROWTH costs RM 129.00 a month. */
const GROWTH_MONTHLY = "RM 129.00";
/** kaunter-core's sentence for three modules on GROWTH (two at once). */
const OVER_MODULE_LIMIT = "Your plan allows 2 modules at once and 3 are chosen: switch one off or move to a larger plan.";
const MODULES_SAVED = "Saved. The desks show the change after their next sync.";
/** A third business, signed up by the test, whose modules must not move. */
const C = {
  slug: "kedai-lain-e2e",
  email: "admin@kedai-lain-e2e.my",
  password: "kuda merah lompat tinggi",
  name: "Kedai Lain E2E",
};

/** The test's own HTTP calls (seeding as desks, checking the API's answers). */
async function call(method, path, { body, token, cookie, csrf } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  if (cookie) headers.Cookie = cookie;
  if (csrf) headers["X-CSRF-Token"] = csrf;
  const response = await fetch(`${SERVER}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : null };
}

async function ok(method, path, options) {
  const answer = await call(method, path, options);
  assert.ok(answer.status >= 200 && answer.status < 300, `${method} ${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer;
}

/** Logs in over HTTP; the session cookie and CSRF token for the test's own calls. */
async function office(slug, email, password) {
  const answer = await ok("POST", "/v1/auth/login", { body: { business: slug, email, password, totp_code: null } });
  const cookie = answer.headers
    .getSetCookie()
    .map((line) => line.split(";")[0])
    .find((pair) => pair.startsWith("kaunter_session="));
  assert.ok(cookie, "the login sets the session cookie");
  return { cookie, csrf: answer.body.csrf_token };
}

function psql(sql) {
  return execFileSync("psql", [env("KAUNTER_DATABASE_URL"), "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", sql], {
    encoding: "utf8",
    timeout: STEP_TIMEOUT_MS,
  }).trim();
}

/** The modules a subscription view has switched on. */
const enabledModules = (view) => view.modules.filter((module) => module.enabled).map((module) => module.module);

/** The modules in the licence lease a desk fetches now. */
async function leaseModules(desk) {
  const signed = (await ok("GET", "/v1/licence", { token: desk.device_token })).body;
  return JSON.parse(Buffer.from(signed.payload, "base64").toString("utf8")).modules;
}

async function enrol(code, deviceName) {
  const answer = await ok("POST", "/v1/enrol", { body: { code, device_name: deviceName } });
  return answer.body;
}

/** A hybrid logical clock stamp for now (milliseconds << 16), as the wire's decimal string. */
let lastStamp = 0n;
function stamp() {
  const now = BigInt(Date.now()) << 16n;
  lastStamp = now > lastStamp ? now : lastStamp + 1n;
  return lastStamp.toString();
}

/** Desk 1 registers a patient and opens their clinical record in an emergency. */
async function pushEmergencyOpening(desk) {
  const patientId = crypto.randomUUID();
  const change = (entity, rowId, fields) => ({
    entity,
    row_id: rowId,
    branch_id: desk.branch_id,
    stamp: { hlc: stamp(), device_id: desk.device_id },
    fields,
    recorded_at: new Date().toISOString(),
  });
  const answer = await ok("POST", "/v1/sync/push", {
    token: desk.device_token,
    body: {
      schema_version: 5,
      entries: [
        {
          seq: 1,
          schema_version: 5,
          change: change("patient", patientId, {
            full_name: PATIENT_NAME,
            id_type: "mykad",
            id_number: "850315145678",
            phone: "+60123456789",
            date_of_birth: null,
            sex: "female",
          }),
        },
        {
          seq: 2,
          schema_version: 5,
          change: change("clinical_entry", crypto.randomUUID(), {
            patient_id: patientId,
            kind: "emergency_access",
            body: EMERGENCY_REASON,
            author_id: null,
          }),
        },
      ],
    },
  });
  assert.deepEqual(answer.body.rejected, [], "the desk's emergency opening is taken");
}

async function reportStatus(desk, report) {
  await ok("POST", "/v1/sync/status", {
    token: desk.device_token,
    body: {
      pending: 0,
      refused: 0,
      oldest_pending_at: null,
      last_synced_at: new Date().toISOString(),
      last_error: null,
      schema_version: 5,
      app_version: "0.9.1-e2e",
      ...report,
    },
  });
}

/** Waits until `predicate` (run in the test) is true. */
async function eventually(what, predicate, timeoutMs = STEP_TIMEOUT_MS) {
  const until = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await predicate();
      if (last) return last;
    } catch (error) {
      last = error;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what} (last: ${last})`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const byTestId = (page, id) => page.locator(`[data-testid="${id}"]`);

async function textOf(page, id) {
  const locator = byTestId(page, id);
  await locator.first().waitFor({ state: "visible", timeout: STEP_TIMEOUT_MS });
  return (await locator.first().innerText()).trim();
}

async function signIn(page, { slug, email, password }) {
  await byTestId(page, "sign-in-form").waitFor({ state: "visible", timeout: STEP_TIMEOUT_MS });
  await page.getByLabel("Business ID", { exact: true }).fill(slug);
  await page.getByLabel("E-mail", { exact: true }).fill(email);
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
}

async function sessionCookie(context) {
  return (await context.cookies(SERVER)).find((cookie) => cookie.name === "kaunter_session");
}

/** Every section of the dashboard has finished loading (ready or refused). */
async function sectionsLoaded(page) {
  for (const name of ["branches", "desks", "subscription", "payments", "emergency", "users"]) {
    await page.waitForSelector(`[data-testid="${name}-body"]:not([data-state="loading"])`, { timeout: STEP_TIMEOUT_MS });
  }
}

test("head office's pages in real Chromium", { timeout: 240_000 }, async () => {
  // Seeding as the desks and people would: desks enrol and report, one opens a record in an
  // emergency, the ADMIN invites a receptionist who accepts.
  const desk1 = await enrol(env("KAUNTER_ENROL_CODE_1"), DESK_1);
  const desk2 = await enrol(env("KAUNTER_ENROL_CODE_2"), DESK_2);
  const deskB = await enrol(env("KAUNTER_OTHER_ENROL_CODE"), B.deskName);
  assert.equal(desk1.business_name, A.name);
  assert.equal(desk2.branch_name, A.secondBranch);
  assert.equal(deskB.branch_name, B.branch);
  await pushEmergencyOpening(desk1);
  await reportStatus(desk1, {
    pending: 3,
    refused: 1,
    oldest_pending_at: new Date(Date.now() - 2 * 3600_000).toISOString(),
    last_error: DESK_1_ERROR,
  });
  await reportStatus(desk2, {});
  await reportStatus(deskB, { last_error: B.deskError });
  // Desk 2 was last heard from five days ago.
  assert.equal(
    psql(`UPDATE devices SET last_seen_at = now() - interval '5 days' WHERE device_id = '${desk2.device_id}' RETURNING name`),
    DESK_2,
  );
  const admin = await office(A.slug, A.email, A.password);
  // A shop that signs itself up: its ADMIN's session watches its own modules.
  await ok("POST", "/v1/signup", {
    body: {
      business_name: C.name,
      slug: C.slug,
      industry: "RETAIL",
      email: `pejabat@${C.slug}.my`,
      phone: "03-2145 8899",
      address_line1: "8, Jalan Sultan",
      address_line2: "",
      postcode: "50000",
      city: "Kuala Lumpur",
      state: "W.P. Kuala Lumpur",
      branch_name: "Kedai Utama",
      admin_name: "Pentadbir Kedai",
      admin_email: C.email,
      admin_password: C.password,
      language: "en",
    },
  });
  const other = await office(C.slug, C.email, C.password);
  const roles = (await ok("GET", "/v1/roles", admin)).body.roles;
  const receptionistRole = roles.find((role) => role.name === "Receptionist");
  assert.ok(receptionistRole, "a clinic has a Receptionist role");
  const invited = await ok("POST", "/v1/users/invite", {
    ...admin,
    body: { name: RECEPTIONIST.name, email: RECEPTIONIST.email, role_ids: [receptionistRole.role_id] },
  });
  await ok("POST", "/v1/invitations/accept", {
    body: { token: invited.body.invitation_token, password: RECEPTIONIST.password },
  });

  const profile = mkdtempSync(join(tmpdir(), "kaunter-office-chromium-"));
  const shots = process.env.KAUNTER_E2E_SCREENSHOT_DIR || mkdtempSync(join(tmpdir(), "kaunter-office-e2e-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.KAUNTER_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 1400, height: 1000 },
    timezoneId: "Europe/London",
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  // Anything the console reports as an error, beyond the refused requests the pages expect
  // (401 before sign-in, 403 for a role), fails the test: a script or style the
  // Content-Security-Policy blocked would show here.
  const consoleErrors = [];
  page.on("console", (message) => {
    if (message.type() === "error" && !/^Failed to load resource: the server responded with a status of/.test(message.text())) {
      consoleErrors.push(message.text());
    }
  });
  page.on("pageerror", (error) => consoleErrors.push(`page error: ${error.message}`));
  // Every refused request, which must be one the story expects.
  const refused = [];
  page.on("response", (response) => {
    if (response.status() >= 400) {
      const url = new URL(response.url());
      refused.push(`${response.status()} ${response.request().method()} ${url.pathname}${url.search}`);
    }
  });
  let currentStep = "setting up";
  page.on("requestfailed", (request) =>
    refused.push(`failed ${request.method()} ${request.url()}: ${request.failure()?.errorText} (during: ${currentStep})`),
  );
  const SECTION_ROUTES = "/v1/(devices|subscription|payments|users|branches|emergency-access\\?state=pending)";
  const EXPECTED_REFUSALS = [
    /^401 GET \/v1\/auth\/session$/, // the page asks whether it has a session before sign-in
    /^40[13] POST \/v1\/auth\/login$/, // the wrong password
    /^429 POST \/v1\/auth\/login$/, // throttled
    /^404 GET \/v1\/no-such-route$/, // asked on purpose
    new RegExp(`^403 GET ${SECTION_ROUTES}$`), // the receptionist's sections
    new RegExp(`^401 GET ${SECTION_ROUTES}$`), // after the session is revoked
    /^409 PUT \/v1\/subscription\/modules$/, // one module past the plan's limit
    /^402 PUT \/v1\/subscription\/modules$/, // modules changed in the grace
  ];

  /** One step of the story, timed; the first failure stops the test (with a screenshot). */
  const step = async (name, body) => {
    currentStep = name;
    const started = Date.now();
    await body();
    console.log(`  ok - ${name} (${Date.now() - started} ms)`);
  };

  try {
    await step("the page is served at / with its security headers", async () => {
      const response = await page.goto(`${SERVER}/`);
      assert.equal(response.status(), 200);
      const headers = response.headers();
      assert.match(headers["content-type"], /^text\/html/);
      assert.match(headers["content-security-policy"], /default-src 'self'/);
      assert.match(headers["content-security-policy"], /frame-ancestors 'none'/);
      assert.equal(headers["x-frame-options"], "DENY");
      assert.equal(headers["referrer-policy"], "no-referrer");
      await byTestId(page, "sign-in-form").waitFor({ state: "visible" });
      assert.equal(await page.locator("h1").innerText(), "Sign in to head office");
      const unknown = await page.evaluate(async () => {
        const answer = await fetch("/v1/no-such-route");
        return { status: answer.status, type: answer.headers.get("content-type"), body: await answer.json() };
      });
      assert.deepEqual([unknown.status, unknown.type, unknown.body.code], [404, "application/json", "not_found"]);
    });

    await step("a wrong password is refused with a plain message", async () => {
      await signIn(page, { slug: A.slug, email: A.email, password: "not the right password" });
      assert.equal(await textOf(page, "sign-in-error"), "The business ID, e-mail or password is not right.");
      assert.equal(await byTestId(page, "business-name").count(), 0, "no dashboard");
      assert.equal(await sessionCookie(context), undefined, "no session cookie");
    });

    await step("repeated failures are throttled, and the page says for how long", async () => {
      const stranger = { slug: A.slug, email: `nobody@${A.slug}.my`, password: "guessing again and again" };
      const message = await eventually(
        "the throttled message",
        async () => {
          await signIn(page, stranger);
          await page.waitForSelector('[data-testid="sign-in-submit"]:not([disabled])');
          const text = await textOf(page, "sign-in-error");
          return /Too many failed sign-ins/.test(text) ? text : null;
        },
        60_000,
      );
      assert.match(message, /^Too many failed sign-ins\. Try again in \d+ minutes?\.$/);
    });

    await step("signing in shows the business, its branches and only its own", async () => {
      await signIn(page, A);
      assert.equal(await textOf(page, "business-name"), A.name);
      assert.match(await textOf(page, "signed-in-as"), new RegExp(A.email.replace(/\./g, "\\.")));
      assert.ok(await sessionCookie(context), "the server's session cookie is set (HttpOnly)");
      assert.equal((await sessionCookie(context)).httpOnly, true);
      await sectionsLoaded(page);
      const branches = await byTestId(page, "branch-name").allInnerTexts();
      assert.deepEqual([...branches].sort(), [A.branch, A.secondBranch].sort());
    });

    await step("every desk with its branch, status, last seen, backlog and last error", async () => {
      const rows = byTestId(page, "desk-row");
      assert.equal(await rows.count(), 2);
      const desk1Row = page.locator(`[data-testid="desk-row"][data-desk="${DESK_1}"]`);
      assert.equal(await desk1Row.locator('[data-testid="desk-branch"]').innerText(), A.branch);
      assert.equal(await desk1Row.locator('[data-testid="desk-status"]').innerText(), "Last sync failed");
      assert.equal(await desk1Row.locator('[data-testid="desk-error"]').innerText(), DESK_1_ERROR);
      assert.match(await desk1Row.locator('[data-testid="desk-pending"]').innerText(), /^3 \(since \d\d\/\d\d\/\d{4} \d\d:\d\d\)$/);
      assert.equal(await desk1Row.locator('[data-testid="desk-refused"]').innerText(), "1");
      const desk2Row = page.locator(`[data-testid="desk-row"][data-desk="${DESK_2}"]`);
      assert.equal(await desk2Row.locator('[data-testid="desk-branch"]').innerText(), A.secondBranch);
      assert.equal(await desk2Row.getAttribute("data-health"), "stale");
      assert.match(await desk2Row.getAttribute("class"), /\battention\b/);
      assert.equal(await desk2Row.locator('[data-testid="desk-status"]').innerText(), "Not seen for 5 days");
      assert.match(await desk2Row.innerText(), /5 days ago/);
      assert.equal(await textOf(page, "desks-summary"), "2 of 2 desks need attention.");
    });

    await step("dates are shown in Kuala Lumpur time whatever the browser's zone", async () => {
      const api = (await ok("GET", "/v1/devices", admin)).body.devices.find((desk) => desk.device_name === DESK_2);
      const seen = new Date(Date.parse(api.last_seen_at) + 8 * 3600_000);
      const pad = (n) => String(n).padStart(2, "0");
      const expected = `${pad(seen.getUTCDate())}/${pad(seen.getUTCMonth() + 1)}/${seen.getUTCFullYear()} ${pad(seen.getUTCHours())}:${pad(seen.getUTCMinutes())}`;
      const row = page.locator(`[data-testid="desk-row"][data-desk="${DESK_2}"]`);
      assert.ok((await row.innerText()).includes(expected), `${expected} in ${await row.innerText()}`);
    });

    await step("the subscription: plan, state, days left, limits in use and modules", async () => {
      const api = (await ok("GET", "/v1/subscription", admin)).body;
      assert.equal(api.state, "ACTIVE", "the recorded payment activated the subscription");
      assert.ok(api.days_left > 300, `a year paid: ${api.days_left} days left`);
      assert.equal(await textOf(page, "subscription-plan"), "Growth");
      assert.equal(await textOf(page, "subscription-state"), "Active");
      assert.equal(await textOf(page, "subscription-access"), "Full access");
      assert.equal(await textOf(page, "subscription-days-left"), `${api.days_left} days left of the paid period`);
      const devices = api.limits.find((limit) => limit.resource === "DEVICE");
      assert.equal(devices.in_use, 2);
      assert.equal(await textOf(page, "limit-DEVICE"), `Desks: 2 of ${devices.limit}`);
      const users = api.limits.find((limit) => limit.resource === "USER");
      assert.equal(users.in_use, 2, "the ADMIN and the receptionist");
      assert.equal(await textOf(page, "limit-USER"), `Staff accounts: 2 of ${users.limit}`);
      assert.equal(await byTestId(page, "pay-due").count(), 0, "nothing to pay while active");
    });

    await step("modules: one switched on within the plan, one past it refused with its sentence", async () => {
      // The catalogue as checkboxes: the clinic on, a beta labelled, an INACTIVE one disabled.
      assert.equal(await textOf(page, "modules-limit"), "1 of 2 modules");
      assert.equal(await byTestId(page, "module-box-CLINIC").isChecked(), true);
      assert.equal(await byTestId(page, "module-box-RETAIL_POS").isChecked(), false);
      assert.match(await textOf(page, "module-SALON"), /^Salon \(beta\)/);
      assert.equal(await byTestId(page, "module-box-EDUCATION").isDisabled(), true);
      const otherBefore = enabledModules((await ok("GET", "/v1/subscription", other)).body);
      const otherDeskBefore = await leaseModules(deskB);

      await byTestId(page, "module-box-RETAIL_POS").check();
      assert.equal(await textOf(page, "modules-limit"), "2 of 2 modules");
      await byTestId(page, "modules-save").click();
      await eventually("the modules to be saved", async () => (await textOf(page, "modules-message")) === MODULES_SAVED);
      // Drawn again from the server's answer.
      assert.equal(await byTestId(page, "module-RETAIL_POS").getAttribute("data-enabled"), "true");
      assert.equal(await textOf(page, "limit-MODULE"), "Modules: 2 of 2");
      assert.deepEqual(enabledModules((await ok("GET", "/v1/subscription", admin)).body), ["RETAIL_POS", "CLINIC"]);
      assert.deepEqual(await leaseModules(desk1), ["CLINIC", "RETAIL_POS"], "the desk's next lease carries them");

      await byTestId(page, "module-box-SALON").check();
      assert.equal(await textOf(page, "modules-limit"), "3 of 2 modules");
      await byTestId(page, "modules-save").click();
      await page.waitForSelector('[data-testid="modules-message"][data-kind="error"]');
      assert.equal(await textOf(page, "modules-message"), OVER_MODULE_LIMIT);
      assert.equal(await byTestId(page, "module-box-SALON").isChecked(), true, "the choice stays to be corrected");
      assert.deepEqual(enabledModules((await ok("GET", "/v1/subscription", admin)).body), ["RETAIL_POS", "CLINIC"]);

      // Another business's page and desk see none of it.
      assert.deepEqual(enabledModules((await ok("GET", "/v1/subscription", other)).body), otherBefore);
      assert.deepEqual(otherBefore, ["RETAIL_POS"], "a shop starts with the point of sale");
      assert.deepEqual(await leaseModules(deskB), otherDeskBefore);
      await byTestId(page, "refresh").click();
      await sectionsLoaded(page);
      assert.equal(await byTestId(page, "module-box-SALON").isChecked(), false, "a refresh shows what is saved");
    });

    await step("cancelling: offered, explained, kept, then cancelled at the period's end", async () => {
      const before = (await ok("GET", "/v1/subscription", admin)).body;
      assert.equal(before.cancel_at_period_end, false);
      // The period's last day as the page writes it: DD/MM/YYYY in Kuala Lumpur (UTC+8).
      const [year, month, day] = new Date(Date.parse(before.period_ends_at) + 8 * 3_600_000).toISOString().slice(0, 10).split("-");
      await byTestId(page, "cancel-offer").click();
      const question = await textOf(page, "cancel-question");
      assert.ok(question.includes(`until ${day}/${month}/${year}`), `the question names the period's end: ${question}`);
      assert.match(question, /Nothing recorded is deleted/);
      await byTestId(page, "cancel-keep").click();
      assert.equal(await byTestId(page, "cancel-question").isHidden(), true, "Keep closes the question");
      assert.equal((await ok("GET", "/v1/subscription", admin)).body.cancel_at_period_end, false, "Keep changes nothing");
      await byTestId(page, "cancel-offer").click();
      await byTestId(page, "cancel-confirm").click();
      await eventually("the section to say the subscription will not renew", async () => (await byTestId(page, "subscription-cancelled").count()) === 1);
      assert.equal(await textOf(page, "subscription-cancelled"), `Cancelled: it ends on ${day}/${month}/${year} and will not renew.`);
      assert.equal(await byTestId(page, "cancel-offer").count(), 0, "nothing more to cancel");
      const after = (await ok("GET", "/v1/subscription", admin)).body;
      assert.equal(after.cancel_at_period_end, true);
      assert.equal(after.state, "ACTIVE", "it runs to the period's end");
      assert.equal(after.period_ends_at, before.period_ends_at, "the paid period is kept");
      assert.equal((await ok("GET", "/v1/subscription", other)).body.cancel_at_period_end, false, "another business's subscription is untouched");
    });

    await step("the payment recorded with `admin record-payment` is listed in ringgit", async () => {
      const rows = byTestId(page, "payment-row");
      assert.equal(await rows.count(), 1, "A's payment only");
      const row = rows.first();
      assert.equal(await row.locator('[data-testid="payment-reference"]').innerText(), A.paymentReference);
      assert.equal(A.paymentAmountSen, 123456, "the script records RM 1,234.56");
      assert.equal(await row.locator('[data-testid="payment-amount"]').innerText(), "RM 1,234.56");
      assert.match(await row.innerText(), /Credit/);
      assert.match(await row.innerText(), /Completed/);
      assert.match(await row.innerText(), /Growth, yearly/);
    });

    await step("the payment's invoice: the business, its address, the total, printable", async () => {
      const listed = (await ok("GET", "/v1/payments", admin)).body.payments;
      assert.equal(listed.length, 1);
      const number = listed[0].invoice_number;
      assert.match(number, /^INV-\d{6}$/, "a completed payment has an invoice");
      const button = byTestId(page, "payment-invoice");
      assert.equal(await button.innerText(), number);
      await button.click();
      await eventually("the invoice to load", async () => (await byTestId(page, "invoice-number").count()) === 1);
      assert.equal(await textOf(page, "invoice-title"), "Invoice");
      assert.equal(await textOf(page, "invoice-number"), number);
      assert.equal(await textOf(page, "invoice-total"), "RM 1,234.56");
      assert.equal(await textOf(page, "invoice-description"), "Kaunter Growth plan, yearly");
      const buyer = await textOf(page, "invoice-buyer");
      assert.ok(buyer.startsWith(A.name), `the invoice is made out to A: ${buyer}`);
      assert.ok(buyer.includes(A.tenantId), "it quotes A's business ID");
      assert.match(await textOf(page, "invoice-paid-by"), new RegExp(`reference ${A.paymentReference}$`));
      assert.equal(await byTestId(page, "invoice-print").isEnabled(), true);
      // While it is open only the invoice prints.
      await page.emulateMedia({ media: "print" });
      assert.equal(await page.locator("main").isVisible(), false, "the dashboard does not print");
      assert.equal(await byTestId(page, "invoice").isVisible(), true, "the invoice prints");
      await page.emulateMedia({ media: "screen" });
      await byTestId(page, "invoice-close").click();
      assert.equal(await byTestId(page, "invoice").count(), 0, "Close removes it");
    });

    await step("the people of the business", async () => {
      const names = await byTestId(page, "user-name").allInnerTexts();
      assert.equal(names.length, 2);
      assert.ok(names.includes(RECEPTIONIST.name), names.join(", "));
    });

    await step("nothing of the other business appears", async () => {
      const text = await page.locator("body").innerText();
      const html = await page.content();
      for (const secret of [B.name, B.branch, B.deskName, B.deskError, B.paymentReference, B.tenantId]) {
        assert.ok(!text.includes(secret) && !html.includes(secret), `B's ${secret} is on A's page`);
      }
      // And the check can see: A's own of the same kinds are there.
      for (const own of [A.branch, DESK_1, DESK_1_ERROR, A.paymentReference]) {
        assert.ok(text.includes(own), `A's own ${own} is on the page`);
      }
    });

    await step("an emergency opening is reviewed once, with a note", async () => {
      const items = byTestId(page, "emergency-item");
      assert.equal(await items.count(), 1);
      const item = items.first();
      assert.equal(await item.locator('[data-testid="emergency-patient"]').innerText(), PATIENT_NAME);
      assert.equal(await item.locator('[data-testid="emergency-reason"]').innerText(), EMERGENCY_REASON);
      assert.equal(await textOf(page, "emergency-pending"), "1 waiting for review.");
      await item.getByLabel("Review note (optional)").fill(REVIEW_NOTE);
      await item.getByRole("button", { name: "Not justified" }).click();
      await eventually("the review to be saved", async () =>
        (await item.locator('[data-testid="review-result"]').innerText()) === "Reviewed: not justified.",
      );
      assert.equal(await textOf(page, "emergency-pending"), "All reviewed.");
      assert.equal(await item.getByRole("button", { name: "Justified", exact: true }).isDisabled(), true);
      const all = (await ok("GET", "/v1/emergency-access?state=all", admin)).body.openings;
      assert.equal(all.length, 1);
      assert.equal(all[0].review.outcome, "not_justified");
      assert.equal(all[0].review.note, REVIEW_NOTE);
      await byTestId(page, "refresh").click();
      assert.equal(await textOf(page, "emergency-empty"), "No emergency openings wait for review.");
    });

    await step("a reloaded page keeps the session", async () => {
      await page.reload();
      assert.equal(await textOf(page, "business-name"), A.name);
      await sectionsLoaded(page);
    });

    await step("after the subscription ends: what to pay and how", async () => {
      assert.equal(
        psql(
          `UPDATE subscriptions SET period_ends_at = now() - interval '1 day', trial_ends_at = now() - interval '8 days'
           WHERE tenant_id = '${A.tenantId}' RETURNING tenant_id`,
        ),
        A.tenantId,
      );
      await byTestId(page, "refresh").click();
      await byTestId(page, "pay-due").waitFor({ state: "visible" });
      const api = (await ok("GET", "/v1/subscription", admin)).body;
      assert.equal(api.state, "GRACE");
      assert.equal(await textOf(page, "subscription-state"), "Ended: read-only grace");
      assert.equal(await textOf(page, "subscription-access"), "Read-only");
      assert.equal(await textOf(page, "subscription-days-left"), `${api.days_left} days left before suspension`);
      assert.match(await textOf(page, "pay-prices"), new RegExp(`^To continue on Growth: ${GROWTH_MONTHLY} a month or RM 1,290\\.00 a year\\.$`));
      assert.equal(await textOf(page, "pay-reference"), A.tenantId);
      assert.match(await textOf(page, "pay-due"), /read-only until \d\d\/\d\d\/\d{4} \d\d:\d\d/);
      // Modules cannot be changed until it is paid.
      await byTestId(page, "module-box-RETAIL_POS").uncheck();
      await byTestId(page, "modules-save").click();
      await page.waitForSelector('[data-testid="modules-message"][data-kind="error"]');
      assert.equal(await textOf(page, "modules-message"), "The subscription has ended: modules can be changed again once it is paid.");
      const dashboardShot = join(shots, "office-dashboard.png");
      await page.screenshot({ path: dashboardShot, fullPage: true });
      console.log(`office e2e: dashboard screenshot ${dashboardShot}`);
    });

    await step("signing out returns to the sign-in form and the session is gone", async () => {
      await byTestId(page, "sign-out").click();
      await byTestId(page, "sign-in-form").waitFor({ state: "visible" });
      assert.equal(await textOf(page, "sign-in-notice"), "You have signed out.");
      assert.equal(await sessionCookie(context), undefined, "the session cookie is cleared");
      const stored = await page.evaluate(() => [sessionStorage.length, localStorage.length]);
      assert.deepEqual(stored, [0, 0], "nothing of the session is kept in web storage");
      const answer = await page.evaluate(async () => {
        const response = await fetch("/v1/auth/session");
        return { status: response.status, body: await response.json() };
      });
      assert.deepEqual([answer.status, answer.body.code], [401, "session_invalid"]);
      await page.reload();
      await byTestId(page, "sign-in-form").waitFor({ state: "visible" });
      assert.equal(await byTestId(page, "business-name").count(), 0);
      // Signing out ended this browser's session only: the test's own (another login) lives.
      assert.equal((await call("GET", "/v1/auth/session", { cookie: admin.cookie })).status, 200, "the test's own session lives");
    });

    await step("a receptionist sees only what the role allows", async () => {
      await signIn(page, { slug: A.slug, email: RECEPTIONIST.email, password: RECEPTIONIST.password });
      assert.equal(await textOf(page, "business-name"), A.name);
      await sectionsLoaded(page);
      for (const name of ["desks", "subscription", "payments", "emergency", "users"]) {
        assert.equal(await textOf(page, `${name}-not-allowed`), "Your role does not allow you to see this.", name);
      }
      const branches = await byTestId(page, "branch-name").allInnerTexts();
      assert.equal(branches.length, 2, "any person of the business sees its branches");
      assert.equal(await byTestId(page, "desk-row").count(), 0);
      assert.equal(await byTestId(page, "payment-row").count(), 0);
    });

    await step("a session ended on the server sends the person back to sign in", async () => {
      psql(`UPDATE sessions SET revoked_at = now() WHERE tenant_id = '${A.tenantId}' AND revoked_at IS NULL
            AND user_id = (SELECT user_id FROM users WHERE tenant_id = '${A.tenantId}' AND email = '${RECEPTIONIST.email}')`);
      await byTestId(page, "refresh").click();
      await byTestId(page, "sign-in-form").waitFor({ state: "visible" });
      assert.equal(await textOf(page, "sign-in-notice"), "Your session has ended. Sign in again.");
    });

    await step("no script, style or request was blocked or failed unexpectedly", () => {
      assert.deepEqual(consoleErrors, []);
      const unexpected = refused.filter((line) => !EXPECTED_REFUSALS.some((pattern) => pattern.test(line)));
      assert.deepEqual(unexpected, []);
      // The refusals the story makes did happen (so the filter above is not blind).
      for (const pattern of [
        /^429 POST/,
        /^403 GET \/v1\/devices$/,
        /^404 GET \/v1\/no-such-route$/,
        /^409 PUT \/v1\/subscription\/modules$/,
        /^402 PUT \/v1\/subscription\/modules$/,
      ]) {
        assert.ok(refused.some((line) => pattern.test(line)), `${pattern} among ${refused.join("; ")}`);
      }
    });

    const finalShot = join(shots, "office-final.png");
    await page.screenshot({ path: finalShot, fullPage: true });
    console.log(`office e2e: final screenshot ${finalShot}`);
  } catch (error) {
    const failureShot = join(shots, "office-failure.png");
    try {
      await page.screenshot({ path: failureShot, fullPage: true });
      console.error(`office e2e FAILED: screenshot ${failureShot}`);
    } catch (screenshotError) {
      console.error(`office e2e FAILED, and the screenshot failed too: ${screenshotError}`);
    }
    throw error;
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
});
