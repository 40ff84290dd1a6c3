// The case panel: open a case, notes, attachments, custody log with verification, the report
// (downloaded with the key, never via a bare link), request drafts and approval.
import { ApiError, coins, el, session } from "./api.js";
import { table } from "./graph.js";

const $ = (id) => document.getElementById(id);
const enc = encodeURIComponent;

async function call(method, path, body) {
  const response = await fetch(`/api/v1${path}`, {
    method, headers: { Authorization: `Bearer ${session.key}`,
                       ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const doc = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, doc);
  return doc;
}

export class CasePanel {
  constructor(me) {
    this.me = me;
    this.reference = null;
    $("case-open-form").addEventListener("submit", (e) => { e.preventDefault(); this.open($("case-select").value); });
    $("note-form").addEventListener("submit", (e) => { e.preventDefault(); this.write("notes", { text: e.target.text.value }, e.target); });
    $("attach-form").addEventListener("submit", (e) => { e.preventDefault(); this.write("attachments", { address: e.target.address.value.trim() }, e.target); });
    $("case-verify").addEventListener("click", () => this.verify());
    $("case-report").addEventListener("click", () => this.report());
    $("draft-form").addEventListener("submit", (e) => { e.preventDefault(); this.draft(e.target); });
  }

  status(text, bad = false) { $("case-status").replaceChildren(el("span", { class: bad ? "error" : "" }, text)); }

  async list() {
    const { cases } = await call("GET", "/cases");
    $("case-select").replaceChildren(...cases.map((c) => el("option", { value: c.reference }, `${c.reference} — ${c.title}`)));
    return cases;
  }

  async open(reference) {
    if (!reference) return;
    try {
      const snap = await call("GET", `/cases/${enc(reference)}`);
      this.reference = reference;
      $("case-current").textContent = `${snap.case.reference}: ${snap.case.title} (${snap.case.tlp})`;
      $("trace-keep").disabled = false;
      this.render(snap);
    } catch (err) { this.status(err.message, true); }
  }

  async refresh() { if (this.reference) this.render(await call("GET", `/cases/${enc(this.reference)}`)); }

  render(snap) {
    $("case-custody").replaceChildren(el("ol", { id: "custody-list" }, snap.custody.map((e) =>
      el("li", { "data-action": e.action }, `${e.at.slice(0, 19)} ${e.who} (${e.role}) ${e.action}: ${e.what}`))));
    $("case-files").replaceChildren(
      el("h3", {}, "Findings and files"),
      el("ul", {}, [...snap.findings.map((f) => this.fileItem(f.path, `${f.id} ${f.kind}`)),
                    ...snap.artefacts.map((a) => this.fileItem(a.path, a.path))]));
    $("case-requests").replaceChildren(el("ul", {}, snap.requests.map((r) => el("li", {},
      `${r.id} ${r.kind} to ${r.addressee ? r.addressee.name || "" : ""} — ${r.status} `,
      r.status === "draft" && this.me.capabilities.includes("approve")
        ? el("button", { onclick: () => this.approve(r.id) }, "Approve") : null))));
  }

  fileItem(path, label) {
    return el("li", {}, el("a", { href: "#", class: "case-file", "data-path": path,
      onclick: (e) => { e.preventDefault(); this.download(path); } }, label));
  }

  async write(what, body, form) {
    try {
      await call("POST", `/cases/${enc(this.reference)}/${what}`, body);
      form.reset();
      await this.refresh();
      this.status(`${what.slice(0, -1)} added`);
    } catch (err) { this.status(err.message, true); }
  }

  async keepTrace(direction, params) {
    const body = { start: params.start, direction, model: params.model, hops: Number(params.hops || 10),
                   coinjoin: params.coinjoin };
    if (params.stop_at) body.stop_at = params.stop_at.split(",").map((s) => s.trim()).filter(Boolean);
    const doc = await call("POST", `/cases/${enc(this.reference)}/traces`, body);
    await this.refresh();
    return doc.finding;
  }

  async verify() {
    try {
      const report = await call("GET", `/cases/${enc(this.reference)}/custody/verify`);
      this.status(report.ok ? `custody log verified: ${report.entries} entries intact`
        : `custody log BROKEN: ${report.problems.map((p) => p.kind || p.problem).join(", ")}`, !report.ok);
      await this.refresh();
    } catch (err) { this.status(err.message, true); }
  }

  async report() {
    this.status("writing the report…");
    try {
      const doc = await call("POST", `/cases/${enc(this.reference)}/report`);
      await this.refresh();
      const pdf = doc.files.find((f) => f.path.endsWith(".pdf"));
      this.status(`report written: ${pdf.path} (SHA-256 ${pdf.sha256.slice(0, 16)}…)`);
    } catch (err) { this.status(err.message, true); }
  }

  async download(path) {
    const response = await fetch(`/api/v1/cases/${enc(this.reference)}/files?path=${enc(path)}`,
      { headers: { Authorization: `Bearer ${session.key}` } });
    if (!response.ok) { this.status(`download failed: HTTP ${response.status}`, true); return; }
    const blob = await response.blob();
    const link = el("a", { href: URL.createObjectURL(blob), download: path.split("/").pop() });
    document.body.append(link);
    link.click();
    link.remove();
  }

  async draft(form) {
    const data = Object.fromEntries(new FormData(form).entries());
    try {
      const doc = await call("POST", `/cases/${enc(this.reference)}/requests`, data);
      this.status(`request ${doc.id} drafted`);
      await this.refresh();
    } catch (err) { this.status(err.message, true); }
  }

  async approve(id) {
    try {
      await call("POST", `/cases/${enc(this.reference)}/requests/${enc(id)}/approve`);
      this.status(`request ${id} approved`);
      await this.refresh();
    } catch (err) { this.status(err.message, true); }
  }
}

export { coins, table };
