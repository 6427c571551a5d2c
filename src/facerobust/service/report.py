"""``report.html`` beside the gate studies' ``results.json`` (rendered from the JSON only:
every number shown is read from it, nothing is computed here but formatting)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jinja2 import Environment

from facerobust.service.summary import eps_label

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>body{font-family:sans-serif;margin:2em;max-width:70em}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}.small{color:#a60}</style></head><body>
<h1>{{ title }}</h1>
<p>Gate: model <b>{{ gate.model }}</b>, defense {{ gate.defense }}, face detector
{{ gate.detector }}, threshold {{ gate.threshold }}.</p>
{% if kind == "attack" %}
<p>{{ r.attack }} ({{ r.norm }}), {{ r.max_queries }} queries per pair,
{{ "scores" if r.scores_used else "decisions only" }}.
{% if r.limits %}Limits: {{ r.limits }}.{% endif %}</p>
<table><tr><th>eps</th><th>success</th><th>95% CI</th><th>median queries to success
(95% CI)</th><th>success before lock-out</th><th>median time at the allowed rate</th></tr>
{% for b in r.budgets %}<tr><td>{{ lab(b.eps) }}</td>
<td>{{ b.success.k }}/{{ b.success.n }}{% if b.success.n < 30 %}
<span class="small">(small)</span>{% endif %}</td>
<td>{{ pct(b.success.ci95[0]) }}-{{ pct(b.success.ci95[1]) }}</td>
<td>{{ b.median_queries if b.median_queries is not none else "-" }}
{% if b.median_ci95 %}({{ b.median_ci95[0] }}-{{ b.median_ci95[1] }}){% endif %}</td>
<td>{% if b.success_within_lockout %}{{ b.success_within_lockout.k }}/{{
b.success_within_lockout.n }}{% else %}-{% endif %}</td>
<td>{{ "%.0f s"|format(b.median_time_at_rate_s) if b.median_time_at_rate_s is not none
else "-" }}</td></tr>{% endfor %}</table>
<h2>Pairs</h2><table><tr><th class="l">attacker photo</th><th class="l">victim</th>
<th>queries</th><th>429s</th><th>waited s</th><th>locked out</th><th>clean score</th>
<th>best score</th></tr>{% for s in r.samples %}<tr><td class="l">{{ s.attacker_photo }}</td>
<td class="l">{{ s.victim }}</td><td>{{ s.queries }}</td><td>{{ s.rate_limited }}</td>
<td>{{ s.waited_s }}</td><td>{{ s.locked_out }}</td><td>{{ s.clean_score }}</td>
<td>{{ s.best_score }}</td></tr>{% endfor %}</table>
{% else %}
<p>White-box PGD-{{ r.steps }} (Linf) impersonation; EOT {{ r.eot_samples }} draws, JPEG
q={{ r.jpeg_eot }}. <i>gate</i>: accepted by the live gate; <i>in memory</i>: the attacker's
own alignment of the final photo; <i>PGD itself</i>: success on what PGD attacked (the chip,
or the photo through the differentiable alignment; EOT: the mean embedding).</p>
<table><tr><th class="l">method</th><th>eps</th><th class="l">upload</th><th>gate</th>
<th>95% CI</th><th>in memory</th><th>95% CI</th><th>PGD itself</th></tr>
{% for c in r.cells %}<tr><td class="l">{{ c.method }}</td>
<td>{{ lab(c.eps) }}</td><td class="l">{{ c.fmt }}</td>
<td>{{ c.gate_success.k }}/{{ c.gate_success.n }}</td>
<td>{{ pct(c.gate_success.ci95[0]) }}-{{ pct(c.gate_success.ci95[1]) }}</td>
<td>{{ c.in_memory_success.k }}/{{ c.in_memory_success.n }}</td>
<td>{{ pct(c.in_memory_success.ci95[0]) }}-{{ pct(c.in_memory_success.ci95[1]) }}</td>
<td>{% if c.crafted_success %}{{ c.crafted_success.k }}/{{ c.crafted_success.n }}{% endif %}
</td></tr>{% endfor %}</table>
{% endif %}
{% if r.skipped %}<h2>Skipped</h2><ul>{% for s in r.skipped %}<li>{{ s.path }}: {{ s.reason }}
</li>{% endfor %}</ul>{% endif %}
</body></html>
"""


def render(results_json: Path) -> Path:
    """Write ``report.html`` next to ``results_json`` (an attack-gate or photo study)."""


    data: dict[str, Any] = json.loads(Path(results_json).read_text())
    kind = "attack" if "budgets" in data else "photo"
    title = ("Black-box attack on the gate over HTTP" if kind == "attack"
             else "Chip-space vs photo-space adversarial photos through the gate")
    env = Environment(autoescape=True)
    html = env.from_string(_TEMPLATE).render(
        title=title, kind=kind, r=data, gate=data.get("gate", {}),
        pct=lambda v: f"{100 * v:.0f}%", lab=eps_label)
    out = Path(results_json).with_name("report.html")
    out.write_text(html, encoding="utf-8")
    return out
