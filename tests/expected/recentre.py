"""Re-centre tests/expected/<dataset>.yaml on a deliberate rerun of the reference outputs
(e.g. after retraining a default model), and say what moved.

    .venv/bin/python tests/expected/recentre.py toplandscape           # report only
    .venv/bin/python tests/expected/recentre.py toplandscape --write   # rewrite the ranges

For each entry: the new value v. Entries whose `why` names a reference value r ("reference run r",
"reference r", "ref r"): the range keeps its width and moves with the value (multiplicatively for
x/÷ and Poisson ranges, additively otherwise), and r in the text becomes v. Entries without a
reference value are left as they are; those whose new value leaves their range are reported for
review. Prints every entry whose new value lies outside its OLD range (what moved).
"""
import math
import re
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from test_expected import BOUNDED, EXPECTED, FIGURES, load_entries, value_of

REF = re.compile(r"\b(reference run|reference|ref):?\s+(-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)")

def fmt(v, old):
    """v written with as many significant digits as the old reference value (at least 3)."""
    if re.fullmatch(r"-?\d+", old) and abs(v) >= 1:
        return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"
    mant = old.lstrip("-").split("e")[0].replace(".", "").lstrip("0")
    sig = max(3, len(mant))
    return f"{v:.{sig}g}"

def _same_to_shown(v, old):
    """v rounds to the shown reference value at its shown precision."""
    if "e" in old:
        mant, exp = old.split("e")
        dec = len(mant.split(".")[1]) if "." in mant else 0
        step = 10 ** (int(exp) - dec)
    else:
        dec = len(old.split(".")[1]) if "." in old else 0
        step = 10 ** (-dec)
    return abs(v - float(old)) <= 0.5 * step * (1 + 1e-9)

def num(x):
    s = f"{x:.6g}"
    return s

def main(dataset, write):
    entries = load_entries(dataset)
    path = EXPECTED / f"{dataset}.yaml"
    text = path.read_text()
    range_spans = [m.span(1) for m in re.finditer(r"range: (\[[^\]]*\])", text)]
    why_spans = [m.span(1) for m in re.finditer(r'why: (".*?(?<!\\)")', text)]
    assert len(range_spans) == len(entries) == len(why_spans), (len(range_spans), len(why_spans), len(entries))
    edits = []
    moved, review = [], []
    for e, rs, ws in zip(entries, range_spans, why_spans, strict=True):
        lo, hi = (float(x) for x in e["range"])
        try:
            v = value_of(e, FIGURES / dataset)
        except AssertionError as err:
            review.append(f"{e['_id']}: {err}")
            continue
        inside = lo <= v <= hi
        m = REF.search(e["why"])
        if not inside:
            moved.append((e, v, lo, hi))
        if not m:
            if not inside:
                review.append(f"{e['_id']}: {v:.6g} outside [{lo:g}, {hi:g}] and no reference value")
            continue
        r = float(m.group(2))
        if math.isclose(v, r, rel_tol=1e-9, abs_tol=1e-12) or fmt(v, m.group(2)) == m.group(2) \
                or (inside and _same_to_shown(v, m.group(2))):
            continue
        mult = ("×/÷" in e["why"] or "Poisson" in e["why"] or "timed" in e["why"]) and r > 0 and v > 0 and lo > 0
        if mult:
            f = v / r
            nlo, nhi = lo * f, hi * f
        else:
            d = v - r
            nlo, nhi = lo + d, hi + d
        name = (e.get("key") or e.get("column") or "").lower()
        if "pcc" in name:  # a correlation: bounded by [-1, 1], not [0, 1]
            nlo, nhi = max(nlo, -1.0), min(nhi, 1.0)
        elif any(w in name for w in BOUNDED) and lo >= 0 and hi <= 1:
            nlo, nhi = max(nlo, 0.0), min(nhi, 1.0)
            if nlo <= 0 and nhi >= 1:
                review.append(f"{e['_id']}: range would cover [0,1]")
                continue
        assert nlo <= v <= nhi, (e["_id"], v, nlo, nhi)
        old_why = text[ws[0]:ws[1]]
        new_why = old_why[:m.start(2) + 1] + fmt(v, m.group(2)) + old_why[m.end(2) + 1:]
        edits.append((rs, f"[{num(nlo)}, {num(nhi)}]"))
        edits.append((ws, new_why))
    for e, v, lo, hi in moved:
        print(f"MOVED {e['_id']}: {v:.6g} outside old [{lo:g}, {hi:g}]  ({e['why'][:70]})")
    for line in review:
        print("REVIEW", line)
    print(f"{dataset}: {len(entries)} entries, {len(moved)} left their old range, "
          f"{len(edits)//2} re-centred, {len(review)} to review")
    if write:
        for (a, b), new in sorted(edits, reverse=True):
            text = text[:a] + new + text[b:]
        path.write_text(text)
        yaml.safe_load(text)

if __name__ == "__main__":
    main(sys.argv[1], "--write" in sys.argv)
