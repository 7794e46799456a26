// spitwall web page: plain JavaScript, no build step, no third-party code.
// Everything shown comes from /api/v1 with the session cookie; every state-changing request
// carries the session's CSRF token. Text from the server is only ever inserted with
// textContent (never innerHTML), so caller names and notes cannot inject markup.
"use strict";

const API = "/api/v1";
const state = { user: null, csrf: "", callsNext: null, auditCursor: null, view: null,
                bands: [], actions: [] };

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(method, path, body, contentType) {
  const headers = {};
  const opts = { method, headers, credentials: "same-origin" };
  if (method !== "GET") headers["X-CSRF-Token"] = state.csrf;
  if (body !== undefined) {
    if (contentType) { headers["Content-Type"] = contentType; opts.body = body; }
    else { headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
  }
  const r = await fetch(API + path, opts);
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = { message: text }; }
  if (r.status === 401 && state.user && path !== "/session") { showLogin(); }
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

let flashTimer = null;
function flash(message, isError) {
  const f = $("flash");
  f.textContent = message;
  f.className = isError ? "flash error" : "flash";
  f.hidden = false;
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => { f.hidden = true; }, 6000);
}

function when(t) {
  if (t === null || t === undefined) return "";
  const d = new Date(t * 1000);
  return d.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit",
                                       minute: "2-digit" });
}

function number(n) { return n ? (/^\d+$/.test(n) ? "+" + n : n) : "anonymous"; }

// ---------------------------------------------------------------------------- session

function showLogin() {
  state.user = null;
  $("login").hidden = false;
  $("nav").hidden = true;
  $("who").hidden = true;
  for (const v of document.querySelectorAll(".view")) v.hidden = true;
}

function showApp(session) {
  state.user = session.user;
  state.csrf = session.csrf;
  $("login").hidden = true;
  $("nav").hidden = false;
  $("who").hidden = false;
  $("who-name").textContent = state.user.name;
  $("who-role").textContent = state.user.role;
  const sub = state.user.role !== "auditor";
  const aud = state.user.role !== "user";
  for (const id of ["tab-calls", "tab-lists", "tab-voicemail", "tab-settings"]) $(id).hidden = !sub;
  $("tab-audit").hidden = !aud;
  show(sub ? "calls" : "audit");
}

async function login(body) {
  $("login-error").hidden = true;
  try {
    const s = await api("POST", "/session", body);
    $("token").value = "";
    $("login-pass").value = "";
    showApp(s);
  } catch (e) {
    $("login-error").textContent = e.message;
    $("login-error").hidden = false;
  }
}

async function logout() {
  try { await api("DELETE", "/session"); } catch (e) { /* already gone */ }
  showLogin();
}

function show(view) {
  state.view = view;
  for (const v of document.querySelectorAll(".view")) v.hidden = v.id !== "view-" + view;
  for (const t of document.querySelectorAll(".tab")) {
    t.classList.toggle("active", t.dataset.view === view);
  }
  const load = { calls: loadCalls, lists: loadLists, voicemail: loadVoicemails,
                 settings: loadSettings, audit: loadAudit }[view];
  if (load) load().catch((e) => flash(e.message, true));
}

// ---------------------------------------------------------------------------- calls

function verdictCell(c) {
  const v = c.verstat || "no identity";
  const cls = c.verstat === "TN-Validation-Passed" ? "ok"
    : c.verstat === "TN-Validation-Failed" ? "bad" : "none";
  return el("td", {}, el("span", { class: "badge " + cls }, v.replace("TN-Validation-", "")),
            c.attest ? el("span", { class: "attest" }, " attest " + c.attest) : null);
}

function reasonsCell(c) {
  const top = (c.reasons || []).slice(0, 3);
  if (!top.length) return el("td", { class: "why" }, "—");
  return el("td", { class: "why" }, el("ul", {}, ...top.map((r) => el("li", {
    title: `${r.signal} (${r.weight > 0 ? "+" : ""}${r.weight.toFixed(2)})`,
  }, r.detail || r.signal))));
}

function callRow(c) {
  const report = async (spam) => {
    try {
      await api("POST", `/me/calls/${c.id}/report`, { spam });
      flash(spam ? "Reported as spam." : "Marked as not spam.");
      await loadCalls();
    } catch (e) { flash(e.message, true); }
  };
  const verdict = c.report ? el("span", { class: "badge " + (c.report === "spam" ? "bad" : "ok") },
                                c.report === "spam" ? "spam" : "not spam")
    : el("span", {}, el("button", { class: "small-btn", type: "button", onclick: () => report(true) },
                        "Spam"), " ",
         el("button", { class: "small-btn", type: "button", onclick: () => report(false) }, "OK"));
  return el("tr", { "data-call-id": c.id, class: "action-" + c.action },
    el("td", {}, when(c.time)),
    el("td", { class: "caller" }, number(c.caller)),
    verdictCell(c),
    el("td", { class: "num" }, c.score === null ? "" : Math.round(c.score)),
    el("td", {}, el("span", { class: "action " + c.action }, c.action.replace("_", " "))),
    el("td", {}, c.outcome || ""),
    reasonsCell(c),
    el("td", {}, verdict));
}

async function loadCalls(more) {
  const q = more && state.callsNext ? `?before=${state.callsNext}` : "";
  const page = await api("GET", "/me/calls" + q);
  const body = $("calls");
  if (!more) body.replaceChildren();
  for (const c of page.calls) body.append(callRow(c));
  state.callsNext = page.next;
  $("calls-more").hidden = !page.next;
  $("calls-empty").hidden = body.children.length > 0;
}

// ---------------------------------------------------------------------------- lists

async function loadLists() {
  for (const kind of ["block", "allow"]) {
    const data = await api("GET", `/me/${kind}list`);
    const ul = $(kind + "-entries");
    ul.replaceChildren(...data.entries.map((e) => el("li", { "data-entry-id": e.id },
      el("span", { class: "number" }, e.number),
      e.note ? el("span", { class: "note" }, e.note) : null,
      e.expires ? el("span", { class: "note" }, "until " + when(e.expires)) : null,
      el("button", { type: "button", class: "link", "aria-label": "remove " + e.number,
                     onclick: async () => {
                       try { await api("DELETE", `/me/${kind}list/${e.id}`); await loadLists(); }
                       catch (err) { flash(err.message, true); }
                     } }, "remove"))));
    if (!data.entries.length) ul.append(el("li", { class: "empty" }, "empty"));
  }
}

async function addEntry(ev) {
  ev.preventDefault();
  const form = ev.currentTarget;
  const kind = form.dataset.kind;
  const body = { number: form.number.value.trim() };
  if (form.note.value.trim()) body.note = form.note.value.trim();
  try {
    const e = await api("POST", `/me/${kind}list`, body);
    form.reset();
    flash(`${e.number} ${kind === "block" ? "blocked" : "allowed"}.`);
    await loadLists();
  } catch (e) { flash(e.message, true); }
}

async function importCsv(ev) {
  const input = ev.currentTarget;
  const file = input.files[0];
  if (!file) return;
  try {
    const r = await api("POST", `/me/${input.dataset.kind}list`, await file.text(), "text/csv");
    const bad = r.errors.map((e) => `line ${e.line}: ${e.reason}`).join("; ");
    flash(`Imported ${r.imported}.` + (bad ? " Problems: " + bad : ""), !!bad);
  } catch (e) {
    const errs = e.body && e.body.errors ? " " + e.body.errors.slice(0, 5)
      .map((x) => `line ${x.line}: ${x.reason}`).join("; ") : "";
    flash(e.message + errs, true);
  }
  input.value = "";
  await loadLists();
}

// ---------------------------------------------------------------------------- voicemail

async function loadVoicemails() {
  const data = await api("GET", "/me/voicemails");
  const ul = $("voicemails");
  ul.replaceChildren(...data.voicemails.map((v) => el("li", { class: v.heard ? "" : "new" },
    el("div", { class: "vm-head" }, el("strong", {}, number(v.caller)), " · ", when(v.time),
       " · ", v.duration.toFixed(1) + " s", v.heard ? null : el("span", { class: "badge ok" }, "new")),
    el("audio", { controls: true, preload: "none", src: `${API}/me/voicemails/${v.id}/audio` }),
    el("button", { type: "button", class: "link", onclick: async () => {
      try { await api("DELETE", `/me/voicemails/${v.id}`); await loadVoicemails(); }
      catch (e) { flash(e.message, true); }
    } }, "delete"))));
  $("voicemails-empty").hidden = data.voicemails.length > 0;
}

// ---------------------------------------------------------------------------- settings

async function loadSettings() {
  const data = await api("GET", "/me/settings");
  const s = data.settings;
  state.settings = s;
  $("s-strictness").value = s.strictness || "";
  $("s-anonymous").value = s.anonymous || "";
  $("s-monitor").checked = !!s.monitor;
  const fs = $("s-bands");
  fs.replaceChildren(el("legend", {}, "Action per score band"));
  const defaults = (data.defaults && data.defaults.band_actions) || {};
  for (const band of data.bands) {
    const sel = el("select", { name: "band-" + band, id: "s-band-" + band },
      el("option", { value: "" }, "default" + (defaults[band] ? ` (${defaults[band]})` : "")),
      ...data.actions.map((a) => el("option", { value: a }, a)));
    sel.value = (s.band_actions && s.band_actions[band]) || "";
    fs.append(el("label", { class: "band" }, el("span", {}, band), sel));
  }
  state.bands = data.bands;
  $("greeting-status").textContent = s.greeting ? "A greeting is uploaded." : "Default greeting.";
}

async function saveSettings(ev) {
  ev.preventDefault();
  const body = {};
  if ($("s-strictness").value) body.strictness = $("s-strictness").value;
  if ($("s-anonymous").value) body.anonymous = $("s-anonymous").value;
  if ($("s-monitor").checked) body.monitor = true;
  const bands = {};
  for (const b of state.bands) {
    const v = $("s-band-" + b).value;
    if (v) bands[b] = v;
  }
  if (Object.keys(bands).length) body.band_actions = bands;
  if (state.settings && state.settings.greeting) body.greeting = state.settings.greeting;
  try { await api("PUT", "/me/settings", body); flash("Settings saved."); await loadSettings(); }
  catch (e) { flash(e.message, true); }
}

async function uploadGreeting(ev) {
  ev.preventDefault();
  const file = $("greeting-file").files[0];
  if (!file) { flash("Choose a WAV file first.", true); return; }
  try {
    const r = await api("PUT", "/me/greeting", await file.arrayBuffer(), "audio/wav");
    flash(`Greeting uploaded (${r.seconds} s).`);
    await loadSettings();
  } catch (e) { flash(e.message, true); }
}

// ---------------------------------------------------------------------------- audit

const PALETTE = { "TN-Validation-Passed": "#2f9e44", "TN-Validation-Failed": "#e03131",
  "No-TN-Validation": "#868e96", A: "#2f9e44", B: "#f08c00", C: "#e8590c", none: "#adb5bd" };
const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// Stacked bars: one per day, one segment per series value.
function stackedChart(container, rows) {
  const days = [...new Set(rows.map((r) => r[0]))].sort();
  const series = [...new Set(rows.map((r) => r[1]))].sort();
  const counts = {};
  for (const [d, s, n] of rows) counts[d + "|" + s] = n;
  const totals = days.map((d) => series.reduce((a, s) => a + (counts[d + "|" + s] || 0), 0));
  const max = Math.max(1, ...totals);
  const W = 560, H = 220, left = 40, bottom = 40, top = 10;
  const bw = Math.max(4, Math.min(48, (W - left - 10) / Math.max(1, days.length) - 6));
  const g = svg("svg", { viewBox: `0 0 ${W} ${H + 30}`, role: "img", class: "chart-svg",
                         "aria-label": "calls per day" });
  const scale = (v) => (v / max) * (H - bottom - top);
  for (let i = 0; i <= 4; i++) {
    const v = Math.round((max * i) / 4);
    const y = H - bottom - scale(v);
    g.append(svg("line", { x1: left, x2: W - 5, y1: y, y2: y, class: "grid" }));
    g.append(svg("text", { x: left - 6, y: y + 4, "text-anchor": "end", class: "axis" }, v));
  }
  days.forEach((d, i) => {
    const x = left + 6 + i * (bw + 6);
    let y = H - bottom;
    for (const s of series) {
      const n = counts[d + "|" + s] || 0;
      if (!n) continue;
      const h = scale(n);
      y -= h;
      const r = svg("rect", { x, y, width: bw, height: Math.max(h, 0.5),
                              fill: PALETTE[s] || "#4c6ef5" });
      r.append(svg("title", {}, `${d} ${s}: ${n}`));
      g.append(r);
    }
    if (days.length <= 16 || i % Math.ceil(days.length / 16) === 0) {
      g.append(svg("text", { x: x + bw / 2, y: H - bottom + 14, "text-anchor": "middle",
                             class: "axis" }, d.slice(5)));
    }
  });
  let lx = left;
  for (const s of series) {
    g.append(svg("rect", { x: lx, y: H + 8, width: 10, height: 10, fill: PALETTE[s] || "#4c6ef5" }));
    g.append(svg("text", { x: lx + 14, y: H + 17, class: "legend" }, s));
    lx += 24 + s.length * 7;
  }
  container.replaceChildren(days.length ? g : el("p", { class: "empty" }, "no data"));
}

function auditQuery(form, cursor) {
  const p = new URLSearchParams();
  for (const [k, v] of new FormData(form)) if (String(v).trim()) p.set(k, String(v).trim());
  if (cursor) p.set("cursor", cursor);
  p.set("limit", "50");
  return p;
}

function auditRow(r) {
  return el("tr", { class: "clickable", onclick: () => showRecord(r.seq) },
    el("td", { class: "num" }, r.seq), el("td", {}, (r.time_utc || "").replace("T", " ").slice(0, 19)),
    el("td", {}, number(r.orig_tn)), el("td", {}, number(r.dest_tn)), el("td", {}, r.attest || ""),
    el("td", {}, r.verstat || ""), el("td", { class: "num" }, r.score === null ? "" : Math.round(r.score)),
    el("td", {}, r.action || ""), el("td", {}, r.reason || ""));
}

async function showRecord(seq) {
  const r = await api("GET", `/audit/records/${seq}`);
  const d = $("audit-detail");
  d.textContent = JSON.stringify(r, null, 2);
  d.hidden = false;
  d.scrollIntoView({ behavior: "smooth" });
}

async function search(more) {
  const form = $("audit-search");
  const page = await api("GET", "/audit/records?" + auditQuery(form, more ? state.auditCursor : null));
  const body = $("audit-rows");
  if (!more) body.replaceChildren();
  for (const r of page.records) body.append(auditRow(r));
  state.auditCursor = page.next_cursor;
  $("audit-more").hidden = !page.next_cursor;
  const p = new URLSearchParams();
  for (const k of ["since", "until"]) if (form[k].value.trim()) p.set(k, form[k].value.trim());
  p.set("format", "csv");
  $("audit-export").href = `${API}/audit/export?${p}`;
}

async function loadAudit() {
  const form = $("audit-search");
  const p = new URLSearchParams();
  for (const k of ["since", "until"]) if (form[k].value.trim()) p.set(k, form[k].value.trim());
  const s = await api("GET", "/audit/stats?" + p);
  stackedChart($("chart-verstat"), s.by_day_verstat);
  stackedChart($("chart-attest"), s.by_day_attest);
  const t = $("audit-totals");
  const list = (obj) => Object.entries(obj).map(([k, v]) => `${k} ${v}`).join(" · ");
  t.replaceChildren(
    el("div", {}, el("strong", {}, s.total), " calls, ", el("strong", {}, s.spam_total),
       " judged spam"),
    el("div", { class: "small" }, "By action: " + list(s.by_action)),
    el("div", { class: "small" }, "Top spam SPCs: " +
       (s.top_spc.map(([k, n]) => `${k} (${n})`).join(", ") || "none")),
    el("div", { class: "small" }, "Top spam caller prefixes: " +
       (s.top_caller_prefix.map(([k, n]) => `+${k}… (${n})`).join(", ") || "none")));
  await search(false);
}

async function verifyChain() {
  const out = $("verify-result");
  out.hidden = false;
  out.textContent = "Verifying…";
  try {
    const r = await api("GET", "/audit/verify");
    out.textContent = r.summary;
    out.className = "small " + (r.ok ? "ok-text" : "error");
  } catch (e) { out.textContent = e.message; out.className = "small error"; }
}

// ---------------------------------------------------------------------------- wiring

function wire() {
  $("login-token").addEventListener("submit", (ev) => {
    ev.preventDefault();
    login({ token: $("token").value.trim() });
  });
  $("login-password").addEventListener("submit", (ev) => {
    ev.preventDefault();
    login({ name: $("login-name").value.trim(), password: $("login-pass").value });
  });
  $("logout").addEventListener("click", logout);
  for (const t of document.querySelectorAll(".tab")) {
    t.addEventListener("click", () => show(t.dataset.view));
  }
  $("calls-refresh").addEventListener("click", () => loadCalls().catch((e) => flash(e.message, true)));
  $("calls-more").addEventListener("click", () => loadCalls(true).catch((e) => flash(e.message, true)));
  $("block-form").addEventListener("submit", addEntry);
  $("allow-form").addEventListener("submit", addEntry);
  for (const i of document.querySelectorAll(".csv-import")) i.addEventListener("change", importCsv);
  $("settings-form").addEventListener("submit", saveSettings);
  $("greeting-form").addEventListener("submit", uploadGreeting);
  $("audit-search").addEventListener("submit", (ev) => {
    ev.preventDefault();
    loadAudit().catch((e) => flash(e.message, true));
  });
  $("audit-more").addEventListener("click", () => search(true).catch((e) => flash(e.message, true)));
  $("audit-verify").addEventListener("click", verifyChain);
  // Calls arrive all the time: refresh the visible list every few seconds.
  setInterval(() => {
    if (state.user && state.view === "calls" && !document.hidden) loadCalls().catch(() => {});
  }, 5000);
}

async function start() {
  wire();
  try { showApp(await api("GET", "/session")); } catch (e) { showLogin(); }
}

document.addEventListener("DOMContentLoaded", start);
