// The recsys explorer: plain DOM code over the service's JSON API. Every text from data is set with
// textContent and DOM nodes only (no HTML strings), so an item title such as "<script>" is shown, not run.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { version: null, summary: null, picked: [], explains: true };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = String(v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function rendered(what) { document.dispatchEvent(new CustomEvent("explorer:rendered", { detail: what })); }

function message(id, text, error) {
  const m = $(id);
  m.textContent = text || "";
  m.classList.toggle("error", !!error);
}

function banner(text, kind) {
  const b = $("banner");
  b.hidden = !text;
  b.textContent = text || "";
  b.className = kind || "";
}

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.detail) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.error;
  }
}

// One request; notices a model version change (hot reload) from the X-Model-Version header.
async function api(path, body) {
  const init = body === undefined ? {} : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  let r;
  try {
    r = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, { error: "network", detail: "the service does not answer (is it running?)" });
  }
  const version = r.headers.get("X-Model-Version");
  if (version && state.version && version !== state.version) onNewVersion(version);
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

function explainText(err) {
  if (err.status === 503) return "No model is loaded right now (the service is starting or a version is being loaded); try again in a moment.";
  if (err.status === 404) return err.message;
  if (err.code === "not_supported") return "This model cannot explain its scores: " + err.message;
  if (err.status === 0) return err.message;
  return `Error ${err.status}: ${err.message}`;
}

function q(params) { return new URLSearchParams(params).toString(); }

// -- the model ----------------------------------------------------------------------------------------

let reloading = null;
function onNewVersion(version) {
  if (reloading === version) return;
  reloading = version;
  banner(`The service now serves version ${version} (was ${state.version}). Lists shown earlier came from the old version.`, "info");
  loadModel().finally(() => { reloading = null; });
}

async function loadModel() {
  const box = $("model");
  try {
    const s = await api("/model/summary");
    state.summary = s;
    state.version = s.model.version;
    state.explains = s.explain.supported;
    const m = s.model, d = s.data;
    box.replaceChildren(
      el("strong", { text: m.class }), " · version ", el("code", { id: "model-version", text: m.version }),
      ` · ${d.n_users.toLocaleString()} users × ${d.n_items.toLocaleString()} items, ${d.n_interactions.toLocaleString()} interactions · `,
      el("details", {}, el("summary", { text: "details" }),
        el("pre", { text: JSON.stringify({ params: m.params, artifact_sha256: m.artifact_sha256, created: m.created,
          library_version: m.library_version, data: d, explain: s.explain, last_reload_error: m.last_reload_error }, null, 1) })),
    );
    if (!s.explain.supported) box.append(el("span", { class: "badge", text: "no explanations" }));
    const rejected = m.last_reload_error;
    if (rejected) banner(`Version ${rejected.version} was rejected when loading (${rejected.error}); still serving ${m.version}.`);
    else if (!reloading) banner("");
    fillVersions(s.versions);
    return s;
  } catch (err) {
    box.replaceChildren(el("span", { class: "muted", text: explainText(err) }));
    banner(explainText(err));
    if (err.status === 503) setTimeout(loadModel, 1000);
    throw err;
  }
}

function fillVersions(versions) {
  for (const [id, pick] of [["version-a", 0], ["version-b", 1]]) {
    const sel = $(id);
    const before = sel.value;
    sel.replaceChildren(...versions.map((v) => el("option", { value: v.version, text: v.version + (v.current ? " (current)" : "") })));
    const names = versions.map((v) => v.version);
    const current = versions.findIndex((v) => v.current);
    // default: A the previous version, B the current one
    const fallback = pick === 1 ? current : Math.max(0, current - 1);
    sel.value = names.includes(before) ? before : names[fallback] || "";
  }
}

// -- item rows ----------------------------------------------------------------------------------------

function itemLabel(info) {
  const title = info.title ? info.title : `item ${info.item}`;
  const bits = [`id ${info.item}`];
  if (info.genres && info.genres.length) bits.push(info.genres.join(", "));
  return [el("span", { class: "title", text: title }), el("span", { class: "meta", text: bits.join(" · ") })];
}

function fmt(x) { return typeof x === "number" ? (Math.abs(x) >= 1000 || (x !== 0 && Math.abs(x) < 0.001) ? x.toExponential(3) : x.toFixed(4)) : String(x); }

function fmtTime(t) {
  if (t === null || t === undefined) return null;
  if (t > 1e8 && t < 1e10) return new Date(t * 1000).toISOString().slice(0, 10);
  return String(t);
}

// A recommendation row: the item (click: its explanation), its score, and a "similar" button.
function recRow(info, rank, explainFn, extra) {
  const li = el("li", { "data-item": String(info.item) });
  const panelId = `exp-${Math.random().toString(36).slice(2)}`;
  const main = el("button", { class: "main", type: "button", "aria-expanded": "false", "aria-controls": panelId,
    title: "Why this item? (show the explanation)" }, ...itemLabel(info));
  main.addEventListener("click", () => toggleExplain(li, main, panelId, explainFn));
  const row = el("div", { class: "row" }, el("span", { class: "rank", text: rank }), main);
  if (extra) row.append(extra);
  if (info.score !== undefined) row.append(el("span", { class: "score", text: fmt(info.score) }));
  row.append(similarButton(info));
  li.append(row);
  return li;
}

function similarButton(info) {
  if (!(state.summary && state.summary.model.supports.similar_items)) return "";
  return el("button", { type: "button", class: "small", title: "Items similar to this one", onclick: () => showSimilar(info) }, "similar");
}

async function toggleExplain(li, button, panelId, explainFn) {
  const open = li.querySelector(".explain");
  if (open) { open.remove(); button.setAttribute("aria-expanded", "false"); rendered("explain-close"); return; }
  const panel = el("div", { class: "explain", id: panelId, role: "region", "aria-label": "Explanation" }, "Loading the explanation…");
  li.append(panel);
  button.setAttribute("aria-expanded", "true");
  try {
    const e = await explainFn();
    panel.replaceChildren(explanation(e));
  } catch (err) {
    panel.replaceChildren(el("span", { class: "message error", text: explainText(err) }));
  }
  rendered("explain");
}

function explanation(e) {
  const sources = e.parts.filter((p) => p.item !== null);
  const max = Math.max(1e-12, ...(sources.length ? sources : e.parts).map((p) => Math.abs(p.contribution)));
  const what = e.exact ? `Score ${fmt(e.score)} = the sum of these parts` : `Score ${fmt(e.score)}; weights shown are an approximation (${e.parts[0] ? e.parts[0].kind : ""}), not parts of the score`;
  const rows = e.parts.map((p) => {
    let label;
    if (p.kind === "item" || p.kind === "attention") label = [el("span", { class: "title", text: p.title || `item ${p.item}` }), el("span", { class: "meta", text: `id ${p.item}` + (Object.keys(p.detail).length ? " · " + Object.entries(p.detail).map(([k, v]) => `${k} ${fmt(v)}`).join(", ") : "") })];
    else if (p.kind === "user") label = [el("span", { class: "title", text: `user ${p.item}` }), el("span", { class: "meta", text: "a similar user" })];
    else if (p.kind === "rest") label = [el("span", { class: "muted", text: `the other ${e.n_sources - e.parts.filter((x) => x.item !== null).length} sources` })];
    else label = [el("span", { class: "muted", text: p.kind })];
    const bar = el("div", { class: "bar-cell" + (p.contribution < 0 ? " neg" : "") });
    bar.style.width = p.item === null ? "0" : `${Math.round((100 * Math.abs(p.contribution)) / max)}%`;
    return el("tr", { "data-kind": p.kind, "data-id": p.item === null ? "" : String(p.item) },
      el("td", {}, ...label), el("td", { class: "num", "data-contribution": String(p.contribution), text: fmt(p.contribution) }), el("td", { class: "barcol" }, bar));
  });
  return el("div", {}, el("p", { text: what }),
    el("table", {}, el("thead", {}, el("tr", {}, el("th", { text: e.parts.some((p) => p.kind === "user") ? "because of (similar users)" : "because of (history items)" }), el("th", { class: "num", text: "contribution" }), el("th", { class: "barcol", text: "" }))), el("tbody", {}, ...rows)));
}

// Titles and genres of items, fetched once per model version (a page shows the same items again and again).
const known = new Map();
function remember(infos) { for (const i of infos) known.set(`${state.version}|${i.item}`, i); }

async function titled(items) {
  const missing = [...new Set(items.map((i) => i.item).filter((id) => !known.has(`${state.version}|${id}`)))];
  if (missing.length) remember((await api("/items?" + q({ ids: missing.join(",") }))).items);
  return items.map((it) => ({ ...(known.get(`${state.version}|${it.item}`) || { item: it.item, title: null, genres: [] }), score: it.score }));
}

// -- the user view ------------------------------------------------------------------------------------------

async function showUser(user) {
  const k = $("k").value;
  message("user-message", "Loading…");
  $("similar-panel").hidden = true;
  try {
    // one request: recommendations with titles, and the history
    const recs = await api(`/users/${encodeURIComponent(user)}/overview?` + q({ k, limit: 50 }));
    const items = recs.items, hist = recs.history;
    remember(items);
    remember(hist.items);
    $("recs").replaceChildren(...items.map((it, j) => recRow(it, j + 1,
      () => api("/explain?" + q({ user: recs.user, item: it.item, top: 5 })))));
    if (!items.length) $("recs").append(el("li", { class: "muted", text: "No recommendations (every item is already in the history)." }));
    $("history-order").textContent = `(${hist.n} items, ${hist.order}${hist.n > hist.items.length ? `, latest ${hist.items.length} shown` : ""})`;
    $("history").replaceChildren(...hist.items.map((h) => {
      const when = fmtTime(h.time);
      return el("li", { "data-item": String(h.item) }, el("div", { class: "row" }, el("span", { class: "main" }, ...itemLabel(h)),
        when ? el("span", { class: "score", text: when }) : null, similarButton(h)));
    }));
    if (!hist.items.length) $("history").append(el("li", { class: "muted", text: "No training history." }));
    message("user-message", `User ${recs.user}: top ${items.length} of model version ${recs.model_version}.` + (state.explains ? " Select an item to see why." : " This model cannot explain its scores."));
    $("user").value = String(recs.user);
    if (location.hash !== `#user=${encodeURIComponent(user)}`) history.replaceState(null, "", `#user=${encodeURIComponent(user)}`);
  } catch (err) {
    $("recs").replaceChildren();
    $("history").replaceChildren();
    $("history-order").textContent = "";
    message("user-message", err.status === 404 ? `Unknown user: ${err.message}` : explainText(err), true);
  }
  rendered("user");
}

async function showSimilar(info) {
  const panel = $("similar-panel");
  panel.hidden = false;
  $("similar-title").textContent = `Items similar to ${info.title || "item " + info.item}`;
  message("similar-message", "Loading…");
  try {
    const s = await api("/similar?" + q({ item: info.item, k: 10 }));
    const items = await titled(s.items);
    $("similar").replaceChildren(...items.map((it, j) => el("li", { "data-item": String(it.item) },
      el("div", { class: "row" }, el("span", { class: "rank", text: j + 1 }), el("span", { class: "main" }, ...itemLabel(it)), el("span", { class: "score", text: fmt(it.score) })))));
    message("similar-message", items.length ? "" : "No similar items.");
  } catch (err) {
    $("similar").replaceChildren();
    message("similar-message", explainText(err), true);
  }
  panel.scrollIntoView({ block: "nearest" });
  rendered("similar");
}

// Completion: user ids and items, from the service (debounced; stale answers dropped).
function completer(input, list, fetchOptions) {
  let timer = null, seq = 0;
  // a sent form needs no more suggestions: drop the pending lookup (it would compete with the answer)
  if (input.form) input.form.addEventListener("submit", () => { clearTimeout(timer); seq++; });
  input.addEventListener("input", () => {
    clearTimeout(timer);
    const text = input.value.trim();
    if (!text) return;
    timer = setTimeout(async () => {
      const mine = ++seq;
      try {
        const options = await fetchOptions(text);
        if (mine === seq) list.replaceChildren(...options.map(([value, label]) => el("option", { value, text: label })));
      } catch (err) { /* completion is a convenience: errors show when the form is sent */ }
    }, 120);
  });
}

// -- the history view (fold-in) -------------------------------------------------------------------------------

function renderPicked() {
  $("picked").replaceChildren(...state.picked.map((p, j) => el("li", { "data-item": String(p.item) },
    el("span", { text: p.title || `item ${p.item}` }),
    el("button", { type: "button", "aria-label": `Remove ${p.title || "item " + p.item}`, onclick: () => { state.picked.splice(j, 1); renderPicked(); } }, "×"))));
  if (!state.picked.length) $("picked").append(el("li", { class: "muted", text: "No items yet: add a few you like." }));
}

async function addItem(text) {
  message("history-message", "");
  try {
    const found = await api("/items/search?" + q({ q: text, limit: 10 }));
    const exact = found.items.find((i) => String(i.item) === text || (i.title && i.title.toLowerCase() === text.toLowerCase()));
    const hit = exact || found.items[0];
    if (!hit) { message("history-message", `No item matches "${text}".`, true); return; }
    if (!state.picked.some((p) => String(p.item) === String(hit.item))) state.picked.push(hit);
    renderPicked();
    $("item-search").value = "";
  } catch (err) {
    message("history-message", explainText(err), true);
  }
  rendered("add-item");
}

async function foldIn() {
  if (!state.picked.length) { message("history-message", "Add at least one item first.", true); rendered("fold-in"); return; }
  const items = state.picked.map((p) => p.item);
  message("history-message", "Loading…");
  try {
    const recs = await api("/recommend", { items, k: Number($("history-k").value) });
    const titledItems = await titled(recs.items);
    $("history-recs").replaceChildren(...titledItems.map((it, j) => recRow(it, j + 1, () => api("/explain", { items, item: it.item, top: 5 }))));
    message("history-message", titledItems.length ? `Fold-in recommendations for ${items.length} items.` : "No recommendations.");
  } catch (err) {
    $("history-recs").replaceChildren();
    message("history-message", err.code === "not_supported" ? "This model cannot recommend from a history: " + err.message : explainText(err), true);
  }
  rendered("fold-in");
}

// -- the comparison view ---------------------------------------------------------------------------------------

async function compare() {
  const user = $("compare-user").value.trim();
  const a = $("version-a").value, b = $("version-b").value;
  message("compare-message", "Loading…");
  try {
    const c = await api("/compare?" + q({ user, a, b, k: $("compare-k").value }));
    const both = new Set(c.overlap.map(String));
    const rankIn = (side) => new Map(c[side].items.map((it, j) => [String(it.item), j + 1]));
    const ranks = { a: rankIn("b"), b: rankIn("a") };
    for (const [side, key] of [["a", "compare-a"], ["b", "compare-b"]]) {
      const other = side === "a" ? "B" : "A";
      $(key + "-title").textContent = `${side.toUpperCase()}: version ${c[side].version}`;
      $(key).replaceChildren(...c[side].items.map((it, j) => {
        const li = el("li", { "data-item": String(it.item), class: both.has(String(it.item)) ? "overlap" : null },
          el("div", { class: "row" }, el("span", { class: "rank", text: j + 1 }), el("span", { class: "main" }, ...itemLabel(it)),
            both.has(String(it.item)) ? el("span", { class: "badge", text: `in both: #${ranks[side].get(String(it.item))} in ${other}` }) : null, el("span", { class: "score", text: fmt(it.score) })));
        return li;
      }));
    }
    message("compare-message", `User ${c.user}: ${c.overlap.length} of ${c.a.items.length} items in both lists (highlighted).`);
  } catch (err) {
    $("compare-a").replaceChildren();
    $("compare-b").replaceChildren();
    message("compare-message", err.status === 404 ? `Not found: ${err.message}` : explainText(err), true);
  }
  rendered("compare");
}

// -- tabs (arrow keys move between them) -----------------------------------------------------------------------

function selectTab(tab, focus) {
  for (const t of document.querySelectorAll('[role="tab"]')) {
    const on = t === tab;
    t.setAttribute("aria-selected", String(on));
    t.tabIndex = on ? 0 : -1;
    $(t.getAttribute("aria-controls")).hidden = !on;
  }
  if (focus) tab.focus();
  rendered("tab");
}

function setUp() {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  tabs.forEach((t, i) => {
    t.addEventListener("click", () => selectTab(t));
    t.addEventListener("keydown", (e) => {
      const d = e.key === "ArrowRight" ? 1 : e.key === "ArrowLeft" ? -1 : 0;
      if (d) { e.preventDefault(); selectTab(tabs[(i + d + tabs.length) % tabs.length], true); }
    });
  });
  $("user-form").addEventListener("submit", (e) => { e.preventDefault(); const u = $("user").value.trim(); if (u) showUser(u); });
  // "Random user": the next one is drawn ahead of time, so a click costs one request, not two
  let nextRandom = null;
  const drawRandom = () => { nextRandom = api("/users/random").catch(() => null); };
  $("random").addEventListener("click", async () => {
    try {
      const drawn = nextRandom && (await nextRandom);
      const r = drawn || (await api("/users/random"));
      $("user").value = String(r.user);
      await showUser(String(r.user));
      drawRandom();
    } catch (err) { message("user-message", explainText(err), true); rendered("user"); }
  });
  $("random").addEventListener("focus", () => { if (!nextRandom) drawRandom(); });
  $("random").addEventListener("pointerenter", () => { if (!nextRandom) drawRandom(); });
  $("item-form").addEventListener("submit", (e) => { e.preventDefault(); const t = $("item-search").value.trim(); if (t) addItem(t); });
  $("fold-in").addEventListener("click", foldIn);
  $("clear-history").addEventListener("click", () => { state.picked = []; renderPicked(); $("history-recs").replaceChildren(); message("history-message", ""); });
  $("compare-form").addEventListener("submit", (e) => { e.preventDefault(); compare(); });
  const users = async (text) => (await api("/users/search?" + q({ q: text, limit: 10 }))).users.map((u) => [String(u), String(u)]);
  completer($("user"), $("user-options"), users);
  completer($("compare-user"), $("user-options"), users);
  completer($("item-search"), $("item-options"), async (text) =>
    (await api("/items/search?" + q({ q: text, limit: 10 }))).items.map((i) => [String(i.item), i.title ? `${i.title} (${i.item})` : String(i.item)]));
  renderPicked();
}

setUp();
loadModel().then(() => {
  performance.mark("explorer-ready");
  rendered("model");
  const m = /^#user=(.+)$/.exec(location.hash);
  if (m) { $("user").value = decodeURIComponent(m[1]); showUser(decodeURIComponent(m[1])); }
}, () => rendered("model"));
