// The investigator's shell: sign-in, tabs, search, trace, path finder and screening.
import { api, coins, el, session, short } from "./api.js";
import { CasePanel } from "./cases.js";
import { Explorer, table } from "./graph.js";

const $ = (id) => document.getElementById(id);
let explorer = null;
let cases = null;
let lastTrace = null;

async function signIn(key) {
  session.key = key;
  try {
    const me = await api.me();
    $("login").hidden = true;
    $("app").hidden = false;
    $("tabs").hidden = false;
    $("who").replaceChildren(`${me.name} (${me.role})`,
      el("button", { id: "logout", onclick: signOut }, "Sign out"));
    if (!explorer) explorer = new Explorer($("graph"), $("details"), $("legend"));
    if (!cases) {
      cases = new CasePanel(me);
      cases.list().catch((err) => cases.status(err.message, true));
    }
    return true;
  } catch (err) {
    session.key = null;
    $("login-error").textContent = err.message;
    return false;
  }
}

function signOut() {
  session.key = null;
  window.location.reload();
}

function showTab(name) {
  for (const button of document.querySelectorAll("#tabs button")) {
    button.classList.toggle("active", button.dataset.tab === name);
  }
  for (const tab of document.querySelectorAll(".tab")) tab.hidden = tab.id !== `tab-${name}`;
}

async function search(q) {
  const list = $("search-results");
  list.replaceChildren(el("li", {}, "searching…"));
  try {
    const found = await api.search(q);
    if (!found.results.length) {
      list.replaceChildren(el("li", {}, `nothing found for ${q}`));
      return;
    }
    list.replaceChildren(...found.results.map((hit) => el("li", {
      class: `hit hit-${hit.kind}`, onclick: () => openHit(hit),
    }, el("span", { class: "kind" }, hit.kind), ` ${hit.id} — ${hit.label || ""}`)));
  } catch (err) {
    list.replaceChildren(el("li", { class: "error" }, err.message));
  }
}

async function openHit(hit) {
  try {
    if (hit.kind === "address" || hit.kind === "tag") await explorer.focusAddress(hit.id);
    else if (hit.kind === "tx") await explorer.focusTx(hit.id);
    else if (hit.kind === "block") {
      const block = await api.block(hit.id);
      $("details").replaceChildren(el("h3", {}, `Block ${block.height}`),
        table([["hash", block.hash], ["time", new Date(block.time * 1000).toISOString()],
               ["transactions", block.nTx]]),
        el("ul", { class: "results" }, block.tx.slice(0, 50).map((txid) =>
          el("li", { onclick: () => explorer.focusTx(txid) }, short(txid)))));
    } else if (hit.kind === "cluster") {
      const c = await api.cluster(hit.id);
      for (const item of c.addresses.items.slice(0, 30)) explorer.addAddress(item.address);
      await explorer.annotate(c.addresses.items.slice(0, 30).map((i) => i.address));
      explorer.layout();
    }
  } catch (err) {
    $("details").replaceChildren(el("p", { class: "error" }, err.message));
  }
}

function formParams(form) {
  return Object.fromEntries([...new FormData(form).entries()].filter(([, v]) => v !== ""));
}

async function runTrace(form) {
  const params = formParams(form);
  const direction = params.direction;
  delete params.direction;
  lastTrace = { direction, params: { ...params } };
  const summary = $("trace-summary");
  summary.textContent = "tracing…";
  try {
    const result = await api.trace(direction, params);
    summary.textContent = `${result.direction} ${result.model} trace of ${result.start}: ` +
      `${coins(result.seed_amount_sat)} traced, ${result.nodes.length} tainted outputs, ` +
      `${result.edges.length} flows`;
    drawTrace(result);
    $("trace-endpoints").replaceChildren(...Object.entries(result.endpoints).map(([cat, group]) =>
      el("div", { class: `endpoints endpoints-${cat}` },
        el("h4", {}, `${cat}: ${coins(group.amount_sat)}`),
        el("ul", {}, group.outputs.slice(0, 100).map((o) => el("li", { class: "endpoint" },
          `${o.address || (o.vout === null ? "fee" : "?")} ${coins(o.amount_sat)}` +
          `${o.label ? ` [${o.label}]` : ""} at block ${o.height}`))))));
  } catch (err) {
    summary.replaceChildren(el("span", { class: "error" }, err.message));
  }
}

function drawTrace(result) {
  const nodes = new Map();
  const key = (txid, vout) => `${txid}:${vout}`;
  for (const n of result.nodes) {
    nodes.set(key(n.txid, n.vout), { data: { id: key(n.txid, n.vout),
      label: `${short(n.address)}\n${coins(n.amount_sat)}`, seed: n.seed } });
  }
  const edges = [];
  for (const e of result.edges) {
    const source = key(e.from_txid, e.from_vout);
    const target = key(e.txid, e.to_vout);
    if (nodes.has(source) && nodes.has(target)) {
      edges.push({ data: { id: `${source}>${target}`, source, target, label: coins(e.amount_sat) } });
    }
  }
  const cy = window.cytoscape({
    container: $("trace-graph"),
    elements: [...nodes.values(), ...edges],
    style: [
      { selector: "node", style: { label: "data(label)", "font-size": 8, "text-wrap": "wrap",
        "text-valign": "bottom", "background-color": "#1f5fbf", width: 16, height: 16 } },
      { selector: "node[?seed]", style: { "background-color": "#d62728" } },
      { selector: "edge", style: { width: 1.2, "curve-style": "bezier", "target-arrow-shape": "triangle",
        label: "data(label)", "font-size": 7, "line-color": "#9aa4b5", "target-arrow-color": "#9aa4b5" } },
    ],
    layout: { name: "breadthfirst", directed: true, spacingFactor: 1.1 },
  });
  return cy;
}

async function runPath(form) {
  const out = $("path-result");
  out.textContent = "searching…";
  try {
    const doc = await api.path(formParams(form));
    if (!doc.found) { out.textContent = doc.message; return; }
    out.replaceChildren(...doc.paths.map((p, i) => el("div", { class: "path" },
      el("h4", {}, `${i + 1}. ${p.hops} hop(s), bottleneck ${coins(p.bottleneck_sat)}` +
        (p.time_ordered ? "" : " (not in time order)")),
      table(p.edges.map((e) => [`${short(e.from)} → ${short(e.to)}`,
        `${coins(e.amount_sat)} in ${e.txs.map((t) => short(t.txid)).join(", ")}`])))));
  } catch (err) {
    out.replaceChildren(el("p", { class: "error" }, err.message));
  }
}

async function runScreen(form) {
  const out = $("screen-result");
  const data = new FormData(form);
  let lines = String(data.get("addresses") || "").split(/\r?\n/);
  const file = data.get("file");
  if (file && file.size) lines = lines.concat((await file.text()).split(/\r?\n/).map((l) => l.split(",")[0]));
  const addresses = lines.map((l) => l.trim()).filter((l) => l && l.toLowerCase() !== "address");
  if (!addresses.length) { out.replaceChildren(el("p", { class: "error" }, "no address given")); return; }
  out.textContent = `screening ${addresses.length} address(es)…`;
  try {
    const doc = await api.screen(addresses, data.get("as_of"));
    out.replaceChildren(
      el("p", {}, `${doc.screened} screened: ${doc.sanctioned} sanctioned, ${doc.tagged} tagged, ` +
        `${doc.actor_conflicts} actor conflicts`),
      el("table", { id: "screen-table" },
        el("tr", {}, ["address", "verdict", "categories", "actors", "cluster", "tags"].map((h) => el("th", {}, h))),
        doc.addresses.map((r) => el("tr", { class: r.sanctioned_now ? "sanctioned" : "" },
          el("td", {}, r.address), el("td", {}, r.verdict),
          el("td", {}, [...r.categories, ...r.cluster_categories].join(", ") || "–"),
          el("td", {}, r.actors.join(", ") || "–"),
          el("td", {}, r.cluster ? `${r.cluster.cluster_id} (${r.cluster.size})` : "–"),
          el("td", {}, r.tags.map((t) => t.label).join("; ") || "–")))));
  } catch (err) {
    out.replaceChildren(el("p", { class: "error" }, err.message));
  }
}

function on(id, handler) {
  $(id).addEventListener("submit", (evt) => { evt.preventDefault(); handler(evt.target); });
}

on("login-form", () => signIn($("api-key").value.trim()));
on("search-form", () => search($("search-q").value.trim()));
on("trace-form", runTrace);
on("path-form", runPath);
on("screen-form", runScreen);
$("trace-keep").addEventListener("click", async () => {
  const out = $("trace-kept");
  if (!lastTrace || !cases || !cases.reference) { out.textContent = "run a trace and open a case first"; return; }
  try {
    const finding = await cases.keepTrace(lastTrace.direction, lastTrace.params);
    out.textContent = `kept in case ${cases.reference} as finding ${finding.id} (SHA-256 ${finding.sha256.slice(0, 16)}…)`;
  } catch (err) { out.replaceChildren(el("span", { class: "error" }, err.message)); }
});
$("graph-clear").addEventListener("click", () => explorer && explorer.clear());
for (const button of document.querySelectorAll("#tabs button")) {
  button.addEventListener("click", () => showTab(button.dataset.tab));
}
if (session.key) signIn(session.key);

// Read-only probes of the graph, for the browser tests and the console.
window.__explorerHas = (address) => !!explorer && explorer.cy.getElementById(`a:${address}`).nonempty();
window.__explorerCount = () => ({
  address: explorer ? explorer.cy.nodes("[kind = 'address']").length : 0,
  tx: explorer ? explorer.cy.nodes("[kind = 'tx']").length : 0,
  cluster: explorer ? explorer.cy.nodes("[kind = 'cluster']").length : 0,
});
