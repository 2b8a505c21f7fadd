// What the old web client does, through fetch() from its own origin
// (test/browser/run.sh serves this page on another port than the shim's):
// log in with the OAuth2 form, then bearer calls with JSON, as it sent
// them (Content-Type: application/json on its GETs too, so every call but
// the login is preflighted).  Each step's outcome lands in window.results;
// browser.mjs asserts on them.
"use strict";

async function step(results, name, fn) {
  try {
    results[name] = await fn();
  } catch (e) {
    results[name] = { failed: String(e && e.name) + ": " + String(e && e.message) };
  }
  return results[name];
}

async function call(api, method, path, token, body) {
  const headers = { "Content-Type": "application/json" };
  if (token) headers["Authorization"] = "Bearer " + token;
  const r = await fetch(api + path, {
    method,
    headers,
    credentials: "include",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, body: await r.json(), retryAfter: r.headers.get("Retry-After") };
}

window.pskRun = async function (api, username, password) {
  const results = {};
  const login = await step(results, "login", async () => {
    const r = await fetch(api + "/auth/login", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8" },
      credentials: "include",
      body: new URLSearchParams({ username, password }).toString(),
    });
    return { status: r.status, body: await r.json() };
  });
  if (login.failed) return results;
  const token = login.body.access_token;
  await step(results, "me", () => call(api, "GET", "/auth/me", token));
  const reserve = await step(results, "reserve", () =>
    call(api, "POST", "/users/reserve", token, { tester_name: "browser", country: "UK" }));
  await step(results, "my", () => call(api, "GET", "/users/my", token));
  if (reserve.body && reserve.body.code) {
    await step(results, "release", () =>
      call(api, "POST", "/users/release", token, { code: reserve.body.code, note: "from the browser" }));
  }
  await step(results, "logs", () => call(api, "GET", "/users/logs", token));
  await step(results, "wrong_role", () => call(api, "GET", "/admin/count", token));
  await step(results, "logout", async () => {
    const r = await fetch(api + "/auth/logout", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: "Bearer " + token },
      credentials: "include",
    });
    return { status: r.status, body: await r.json() };
  });
  await step(results, "after_logout", () => call(api, "GET", "/auth/me", token));
  document.getElementById("out").textContent = JSON.stringify(results, null, 1);
  return results;
};
