"""After a study grid gained finished points: set the 10_* count entries of
tests/expected/<dataset>.yaml to the reference tables' counts and add, for each finished point
without entries, its binary-row fraction and D rate at ± 5 jackknife errors.

    .venv/bin/python tests/expected/grid_points.py toplandscape
"""
import csv
import json
import re
import sys
from pathlib import Path

ds = sys.argv[1]
REPO = Path(__file__).resolve().parents[2]
p = REPO / "tests" / "expected" / f"{ds}.yaml"
s = p.read_text()
fig = REPO / "figures" / ds
points = list(csv.DictReader(open(fig / "10_study_points.csv")))
effects = list(csv.DictReader(open(fig / "10_knob_effects.csv")))
verdict = json.load(open(fig / "10_verdict.json"))
def setrange(pattern, value):
    global s
    new, n = re.subn(pattern + r'range: \[[^\]]*\]', lambda m: m.group(0)[:m.group(0).index("range:")] + f"range: [{value}, {value}]", s)
    assert n == 1, (pattern, n)
    s = new
setrange(r'- \{table: "10_verdict.json", key: "points_finished", ', verdict["points_finished"])
setrange(r'- \{table: "10_study_points.csv", where: \{\}, column: "knob", aggregate: "count", ', len(points))
setrange(r'- \{table: "10_knob_effects.csv", where: \{\}, column: "knob", aggregate: "count", ', len(effects))
lines = []
for r in points:
    name = r["point"]
    if f'where: {{point: "{name}"}}, column: "rows_max_ge_0.8"' in s:
        continue
    v, e = float(r["rows_max_ge_0.8"]), float(r["rows_max_ge_0.8_err"])
    d, de = float(r["D_rate"]), float(r["D_rate_err"])
    lines.append(f'- {{table: "10_study_points.csv", where: {{point: "{name}"}}, column: "rows_max_ge_0.8", range: [{max(0, v-5*e):.5g}, {v+5*e:.5g}], why: "the point\'s last monitor value {v:.4g} ± 5 jackknife errors over its probe jets"}}')
    lines.append(f'- {{table: "10_study_points.csv", where: {{point: "{name}"}}, column: "D_rate", range: [{d-5*de:.5g}, {min(1, d+5*de):.5g}], why: "the point\'s D at its last monitor step: {d:.4g} ± 5 jackknife errors"}}')
if lines:
    anchor = [line for line in s.splitlines() if "10_study_points.csv\", where: {point:" in line][-1]
    s = s.replace(anchor, anchor + "\n" + "\n".join(lines), 1)
p.write_text(s)
print("added", len(lines), "entries")
