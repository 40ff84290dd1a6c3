// The graph explorer: addresses (circles) and transactions (squares); an address's inputs and
// outputs are edges labelled with amounts; addresses of one cluster sit in a compound node;
// colours follow the tag category found by screening.
import { api, coins, el, short } from "./api.js";

export const CATEGORY_COLOURS = {
  exchange: "#1f77b4", mixing_service: "#9467bd", mixer: "#9467bd", gambling: "#e377c2",
  market: "#ff7f0e", ransomware: "#d62728", scam: "#d62728", sanction: "#8b0000",
  sanctioned: "#8b0000", miner: "#2ca02c", service: "#17becf", untagged: "#7f8c8d",
};

function colourOf(categories, sanctioned) {
  if (sanctioned) return CATEGORY_COLOURS.sanctioned;
  for (const c of categories || []) if (CATEGORY_COLOURS[c]) return CATEGORY_COLOURS[c];
  return categories && categories.length ? "#bcbd22" : CATEGORY_COLOURS.untagged;
}

export class Explorer {
  constructor(container, details, legend) {
    this.details = details;
    this.cursors = new Map(); // node id -> next cursor, when more neighbours remain
    this.cy = window.cytoscape({
      container,
      maxZoom: 2.5,
      wheelSensitivity: 0.3,
      style: [
        { selector: "node", style: { label: "data(label)", "font-size": 9, "text-valign": "bottom", "text-wrap": "wrap",
          "background-color": "data(colour)", width: 22, height: 22 } },
        { selector: "node.tx", style: { shape: "round-rectangle", width: 14, height: 14,
          "background-color": "#c7ccd6", "font-size": 7 } },
        { selector: "node.cluster", style: { "background-opacity": 0.06, "border-width": 1,
          "border-color": "#8795ad", "border-style": "dashed", "text-valign": "top",
          "font-size": 9, color: "#4a5568" } },
        { selector: "node:selected", style: { "border-width": 3, "border-color": "#1f5fbf" } },
        { selector: "edge", style: { width: 1.2, "curve-style": "bezier", "target-arrow-shape":
          "triangle", "arrow-scale": 0.7, "line-color": "#9aa4b5", "target-arrow-color": "#9aa4b5",
          label: "data(label)", "font-size": 7, "text-rotation": "autorotate",
          "text-background-color": "#fff", "text-background-opacity": 0.8 } },
      ],
    });
    this.cy.on("tap", "node", (evt) => this.show(evt.target));
    legend.replaceChildren(...Object.entries(CATEGORY_COLOURS).map(([name, colour]) =>
      el("span", {}, el("i", { style: `background:${colour}` }), name)));
  }

  clear() { this.cy.elements().remove(); this.cursors.clear(); }

  addAddress(address) {
    const id = `a:${address}`;
    if (this.cy.getElementById(id).empty()) {
      this.cy.add({ group: "nodes", data: { id, kind: "address", address, label: short(address),
                                            colour: CATEGORY_COLOURS.untagged } });
    }
    return this.cy.getElementById(id);
  }

  addTx(txid, height) {
    const id = `t:${txid}`;
    if (this.cy.getElementById(id).empty()) {
      this.cy.add({ group: "nodes", classes: "tx",
                    data: { id, kind: "tx", txid, height, label: short(txid) } });
    }
    return this.cy.getElementById(id);
  }

  addEdge(source, target, sat) {
    const id = `e:${source}>${target}`;
    const existing = this.cy.getElementById(id);
    if (existing.nonempty()) return;
    this.cy.add({ group: "edges", data: { id, source, target, sat, label: coins(sat) } });
  }

  async focusAddress(address) {
    const node = this.addAddress(address);
    await this.annotate([address]);
    this.layout();
    node.select();
    await this.show(node);
  }

  async focusTx(txid) {
    const node = this.addTx(txid);
    await this.expand(node);
    node.select();
    await this.show(node);
  }

  async expand(node) {
    const cursor = this.cursors.get(node.id());
    const added = [];
    if (node.data("kind") === "address") {
      const page = await api.addressNeighbours(node.data("address"), cursor);
      for (const item of page.items) {
        const tx = this.addTx(item.txid, item.height).id();
        for (const input of item.inputs) if (input.address) {
          this.addAddress(input.address); added.push(input.address);
          this.addEdge(`a:${input.address}`, tx, input.value_sat);
        }
        for (const output of item.outputs) if (output.address) {
          this.addAddress(output.address); added.push(output.address);
          this.addEdge(tx, `a:${output.address}`, output.value_sat);
        }
      }
      this.remember(node, page.next_cursor);
    } else if (node.data("kind") === "tx") {
      const page = await api.txNeighbours(node.data("txid"), cursor);
      for (const input of page.inputs) if (input.address) {
        this.addAddress(input.address); added.push(input.address);
        this.addEdge(`a:${input.address}`, node.id(), input.value_sat);
      }
      for (const output of page.outputs) if (output.address) {
        this.addAddress(output.address); added.push(output.address);
        this.addEdge(node.id(), `a:${output.address}`, output.value_sat);
      }
      this.remember(node, page.next_cursor);
    }
    await this.annotate([...new Set(added)]);
    this.layout();
    return added.length;
  }

  remember(node, cursor) {
    if (cursor) this.cursors.set(node.id(), cursor); else this.cursors.delete(node.id());
    node.data("complete", !cursor);
  }

  // Screening gives each address its categories, sanctions and cluster in one batch call.
  async annotate(addresses) {
    if (!addresses.length) return;
    for (let i = 0; i < addresses.length; i += 500) {
      const batch = addresses.slice(i, i + 500);
      const result = await api.screen(batch).catch(() => null);
      if (!result) continue;
      for (const row of result.addresses) {
        const node = this.cy.getElementById(`a:${row.input}`);
        if (node.empty()) continue;
        const categories = [...row.categories, ...row.cluster_categories];
        node.data({ colour: colourOf(categories, row.sanctioned_now), categories,
                    sanctioned: row.sanctioned_now,
                    tags: row.tags.map((t) => t.label).concat(row.cluster_tags.map((t) => t.label)) });
        if (row.tags.length) node.data("label", `${short(row.input)}\n${row.tags[0].label}`);
        const cluster = row.cluster;
        if (cluster && cluster.size > 1) {
          const parent = `c:${cluster.cluster_id}`;
          if (this.cy.getElementById(parent).empty()) {
            this.cy.add({ group: "nodes", classes: "cluster", data: { id: parent, kind: "cluster",
              cluster_id: cluster.cluster_id, label: `cluster ${cluster.cluster_id} (${cluster.size})` } });
          }
          node.move({ parent });
        }
      }
    }
  }

  layout() {
    this.cy.layout({ name: "cose", animate: false, nodeDimensionsIncludeLabels: true,
                     idealEdgeLength: 80, randomize: false, fit: true, padding: 30 }).run();
    const box = this.cy.container();
    box.dataset.layouts = String(Number(box.dataset.layouts || 0) + 1);
  }

  async show(node) {
    const d = node.data();
    const box = this.details;
    box.replaceChildren(el("p", { class: "hint" }, "loading…"));
    try {
      if (d.kind === "address") {
        const a = await api.address(d.address);
        box.replaceChildren(
          el("h3", {}, "Address"), el("p", { id: "detail-address" }, a.address),
          table([["type", a.type], ["balance", coins(a.balance_sat)], ["received", coins(a.received_sat)],
                 ["sent", coins(a.sent_sat)], ["transactions", a.tx_count],
                 ["first seen", `block ${a.first_seen.height}`], ["last seen", `block ${a.last_seen.height}`],
                 ["cluster", a.cluster && a.cluster.cluster_id !== null ? `${a.cluster.cluster_id} (${a.cluster.cluster_size} addresses)` : "–"],
                 ["categories", (d.categories || []).join(", ") || "–"],
                 ["tags", (d.tags || []).join("; ") || "–"],
                 ["sanctioned", d.sanctioned ? "YES" : "no"]]),
          this.expandButton(node));
      } else if (d.kind === "tx") {
        const t = await api.tx(d.txid);
        box.replaceChildren(
          el("h3", {}, "Transaction"), el("p", {}, t.txid),
          table([["block", t.height], ["inputs", t.vin.length], ["outputs", t.vout.length],
                 ["value out", coins(t.output_value_sat)], ["fee", coins(t.fee_sat)],
                 ["coinbase", t.coinbase ? "yes" : "no"]]),
          this.expandButton(node));
      } else if (d.kind === "cluster") {
        const c = await api.cluster(d.cluster_id);
        box.replaceChildren(
          el("h3", {}, `Cluster ${c.cluster_id}`),
          table([["addresses", c.size], ["balance", coins(c.balance_sat)],
                 ["tags", c.attribution.tags.map((t) => t.label).join("; ") || "–"]]));
      }
    } catch (err) {
      box.replaceChildren(el("p", { class: "error" }, err.message));
    }
  }

  expandButton(node) {
    const label = node.data("complete") ? "All neighbours shown" :
      this.cursors.has(node.id()) ? "Expand more" : "Expand neighbours";
    const button = el("button", { id: "expand", onclick: async () => {
      button.disabled = true;
      try { await this.expand(node); await this.show(node); }
      catch (err) { this.details.append(el("p", { class: "error" }, err.message)); }
    } }, label);
    if (node.data("complete")) button.disabled = true;
    return button;
  }
}

export function table(rows) {
  return el("table", {}, rows.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v))));
}
