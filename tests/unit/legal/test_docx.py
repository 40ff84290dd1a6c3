"""The editable .docx copy of a letter: structure and text kept from the letter's HTML."""

from __future__ import annotations

import io
import time

from docx import Document

from cointrail.legal.docx import MONO, html_to_docx

HTML = """<!DOCTYPE html><html><head><title>T</title><style>body { color: red; }</style></head>
<body>
<div class="draft">DRAFT - NOT APPROVED. Do not send.</div>
<table class="meta"><tr><td>From:</td><td>Agency &amp; Unit</td></tr>
<tr><td>To:</td><td>Exchange Ltd</td></tr></table>
<h1>Subject: Request No. X/R0001 – Preservation</h1>
<p>We ask that <strong>Exchange Ltd</strong> preserve
   the data.</p>
<h2>Data</h2>
<ul><li>KYC data</li><li>Login IPs</li></ul>
<table><tr><th>address</th><th>amount</th></tr>
<tr><td class="mono">bc1qexample</td><td>1.5</td></tr></table>
<div class="ident"><div><strong>1.</strong> 1.0 BTC</div>
<div>txid: <span class="mono">ab12</span> output 0</div></div>
<p>Line one<br>Line two</p>
</body></html>"""


def test_letter_structure_and_text_survive() -> None:
    doc = Document(io.BytesIO(html_to_docx(HTML, title="Request X/R0001")))
    paras = [(p.style.name, p.text) for p in doc.paragraphs]
    texts = [t for _, t in paras]
    assert texts[0] == "DRAFT - NOT APPROVED. Do not send."
    assert all(r.bold for r in doc.paragraphs[0].runs)  # the banner stands out
    assert ("Heading 1", "Subject: Request No. X/R0001 – Preservation") in paras
    assert ("Heading 2", "Data") in paras
    assert ("Normal", "We ask that Exchange Ltd preserve the data.") in paras
    strong = next(p for p in doc.paragraphs if p.text.startswith("We ask"))
    assert [r.text.strip() for r in strong.runs if r.bold] == ["Exchange Ltd"]
    assert [t for s, t in paras if s == "List Bullet"] == ["KYC data", "Login IPs"]
    # nested divs give one paragraph each, no empty ones; monospaced identifiers
    assert "1. 1.0 BTC" in texts and "txid: ab12 output 0" in texts
    assert "" not in texts
    txid = next(p for p in doc.paragraphs if p.text.startswith("txid"))
    assert [r.text for r in txid.runs if r.font.name == MONO] == [" ab12"]
    assert "Line one\nLine two" in texts
    # the style sheet and the head are not text of the letter
    assert not any("color" in t or t == "T" for t in texts)
    meta, idents = doc.tables
    assert [[c.text for c in row.cells] for row in meta.rows] == [
        ["From:", "Agency & Unit"], ["To:", "Exchange Ltd"]]
    assert [[c.text for c in row.cells] for row in idents.rows] == [
        ["address", "amount"], ["bc1qexample", "1.5"]]
    assert all(r.bold for r in idents.rows[0].cells[0].paragraphs[0].runs)
    assert idents.rows[1].cells[0].paragraphs[0].runs[0].font.name == MONO
    assert doc.core_properties.title == "Request X/R0001"


def test_same_letter_same_bytes() -> None:
    first = html_to_docx(HTML)
    time.sleep(2.1)  # zip member times have a two-second resolution
    assert html_to_docx(HTML) == first
    assert html_to_docx(HTML.replace("KYC", "Know-your-customer")) != first
