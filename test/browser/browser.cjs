// Headless Chromium (Debian's chromium, driven by playwright-core from
// test/browser/node_modules) against a real shim: the old web client's
// calls through fetch() from another origin, and the /docs page.
// Run by test/browser/run.sh, which starts the shim and the page servers
// and passes their addresses; prints "N passed, M failed" last.
"use strict";
const { chromium } = require("playwright-core");
const { execFileSync } = require("child_process");

const SHIM = process.env.PSK_SHIM_URL;        // http://127.0.0.1:PORT
const PAGE = process.env.PSK_PAGE_URL;        // a listed origin
const STRANGER = process.env.PSK_STRANGER_URL; // an origin not listed
const CHROMIUM = process.env.PSK_CHROMIUM || "/usr/bin/chromium";

let passed = 0;
let failed = 0;

function expect(cond, what) {
  if (!cond) throw new Error("expectation failed: " + JSON.stringify(what));
}

function sql(query) {
  return execFileSync("psql", ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", query],
    { encoding: "utf8" }).trim();
}

async function test(name, fn) {
  try {
    await fn();
    passed++;
    console.log("ok - " + name);
  } catch (e) {
    failed++;
    console.log("not ok - " + name);
    console.log(String(e && e.stack || e).split("\n").map((l) => "# " + l).join("\n"));
  }
}

// Every request the browser makes, to check none leaves 127.0.0.1.
function watch(page, seen) {
  page.on("request", (r) => seen.push(r.url()));
}

(async () => {
  let browser;
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--no-sandbox",
        // no name resolves, so nothing can go beyond the loopback addresses
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--no-proxy-server",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
      ],
    });
  } catch (e) {
    console.log("not ok - chromium starts");
    console.log("# " + String(e).split("\n").join("\n# "));
    console.log("0 passed, 1 failed");
    process.exit(1);
  }
  const seen = [];
  const context = await browser.newContext();

  await test("web client on a listed origin: login, me, reserve, my, release, logs, logout", async () => {
    const page = await context.newPage();
    watch(page, seen);
    const options = () => require("fs").readFileSync(process.env.PSK_SHIM_LOG, "utf8")
      .split("\n").filter((l) => / OPTIONS \/\S+ 204 /.test(l));
    const preflightsBefore = options().length;
    await page.goto(PAGE + "/index.html");
    const before = Number(sql("SELECT count(*) FROM psk.audit_log"));
    const res = await page.evaluate(([api]) => window.pskRun(api, " osv@example.com ", "Rdl@12345"), [SHIM]);
    expect(res.login.status === 200 && res.login.body.token_type === "bearer", res.login);
    expect(res.me.status === 200 && res.me.body.contact_email === "osv@example.com", res.me);
    expect(res.reserve.status === 200 && res.reserve.body.code_type === "OSV", res.reserve);
    const code = res.reserve.body.code;
    expect(res.my.status === 200 && res.my.body.some((c) => c.code === code
      && c.reservation_token === res.reserve.body.reservation_token), res.my);
    expect(res.release.status === 200 && res.release.body.released === code, res.release);
    expect(res.logs.status === 200 && res.logs.body.logs[0].action === "RELEASED"
      && res.logs.body.logs[0].code === code && res.logs.body.logs[1].action === "RESERVED"
      && /^\d\d-\d\d-\d{4} \d\d:\d\d:\d\d [AP]M$/.test(res.logs.body.logs[0].logged_at_str), res.logs);
    // an error reply is readable by the page too
    expect(res.wrong_role.status === 403 && res.wrong_role.body.error === "not_allowed", res.wrong_role);
    expect(res.logout.status === 200, res.logout);
    expect(res.after_logout.status === 401 && res.after_logout.body.error === "unauthorized",
      res.after_logout);
    // what the page did is what the database holds
    expect(sql(`SELECT status FROM psk.codes WHERE code = '${code}'`) === "CAN_BE_USED", code);
    expect(sql(`SELECT string_agg(action || ':' || contact_email || ':' || coalesce(tester_name, '')
                          || ':' || coalesce(country, ''), ',' ORDER BY id)
                  FROM psk.audit_log WHERE code = '${code}' AND id > (SELECT max(id) - 10 FROM psk.audit_log)`)
      === "RESERVED:osv@example.com:browser:UK,RELEASED:osv@example.com:browser:", code);
    expect(Number(sql("SELECT count(*) FROM psk.audit_log")) === before + 2, "audit rows");
    // the browser asked first (the shim's access log shows each preflight)
    // for the calls with a token or a JSON body: me, reserve, my, release,
    // logs, admin/count, logout; the form login needs none
    const preflights = options().slice(preflightsBefore);
    expect(preflights.length === 7 && !preflights.some((l) => l.includes("/auth/login")), preflights);
  });

  await test("web client on an origin not listed: the browser keeps every reply from it", async () => {
    const page = await context.newPage();
    watch(page, seen);
    await page.goto(STRANGER + "/index.html");
    const held = sql("SELECT count(*) FROM psk.codes WHERE status = 'RESERVED'");
    const res = await page.evaluate(([api]) => window.pskRun(api, "osv@example.com", "Rdl@12345"), [SHIM]);
    expect(res.login.failed && /TypeError/.test(res.login.failed), res);
    expect(Object.keys(res).length === 1, res);
    expect(sql("SELECT count(*) FROM psk.codes WHERE status = 'RESERVED'") === held, "reserved something");
  });

  await test("GET /docs renders every operation of /openapi.json", async () => {
    const page = await context.newPage();
    watch(page, seen);
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(SHIM + "/docs");
    await page.waitForSelector(".opblock", { timeout: 30000 });
    const doc = await (await fetch(SHIM + "/openapi.json")).json();
    const want = [];
    for (const [path, ops] of Object.entries(doc.paths))
      for (const m of Object.keys(ops)) want.push(m.toUpperCase() + " " + path);
    const shown = await page.$$eval(".opblock", (els) => els.map((el) => {
      const m = el.querySelector(".opblock-summary-method");
      const p = el.querySelector(".opblock-summary-path");
      return (m ? m.textContent.trim() : "?") + " " +
        (p ? (p.getAttribute("data-path") || p.textContent.trim()) : "?");
    }));
    want.sort();
    shown.sort();
    expect(want.length >= 30 && JSON.stringify(shown) === JSON.stringify(want),
      { missing: want.filter((x) => !shown.includes(x)), extra: shown.filter((x) => !want.includes(x)) });
    const title = await page.textContent(".info .title");
    expect(/PSK/.test(title), title);
    expect(errors.length === 0, errors);
  });

  await test("no request left 127.0.0.1", async () => {
    const out = seen.filter((u) => !u.startsWith("http://127.0.0.1:") && !u.startsWith("data:"));
    expect(seen.length > 10 && out.length === 0, out);
  });

  await browser.close();
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
})();
