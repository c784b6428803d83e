"""Published numbers the notebooks put beside ours (with where each comes from).

ParT: Qu, Li, Qian, "Particle Transformer for Jet Tagging", ICML 2022 (arXiv:2202.03772),
Tables 2-4. Zero-U: arXiv:2512.00210 (docs/analyses.md#published-reference-numbers). Top-k: Wang et al., ML4PS 2024, Table 1.
All of them used detector-level (Delphes) jets for JetClass and Top Landscape and far more
training data; ours are generated at particle level at CPU scale.
"""

from __future__ import annotations

__all__ = ["INTERACTION_PUBLISHED", "PART_PLAIN_PUBLISHED", "PART_PUBLISHED", "TOPK_PUBLISHED",
           "ZERO_U_PUBLISHED"]

#: ParT (full features on JetClass; kin on Top Landscape; kinpid "exp" on Quark-Gluon).
PART_PUBLISHED = {
    "jetclass": {
        "source": "ParT paper Table 2 (ParT, 100M jets)",
        "accuracy": 0.861, "auc": 0.9877,
        "rejection": {"Hbb": 10638, "Hcc": 4149, "Hgg": 123, "H4q": 1864, "Hqql": 5479,
                      "Tbqq": 32787, "Tbl": 15873, "Wqq": 543, "Zqq": 402},
    },
    "toplandscape": {
        "source": "ParT paper Table 3 (ParT, 1.2M jets)",
        "accuracy": 0.940, "auc": 0.9858, "rejection": {"50%": 413, "30%": 1602},
    },
    "quarkgluon": {
        "source": "ParT paper Table 4 (ParT with PID, 1.6M jets)",
        "accuracy": 0.849, "auc": 0.9203, "rejection": {"50%": 47.9, "30%": 129.5},
    },
}

#: Zero-U ablation of ParT_full on JetClass (arXiv:2512.00210).
ZERO_U_PUBLISHED = {
    "accuracy": 0.405, "auc": 0.8974,
    "rejection": {"Hbb": 15.0, "Hcc": 8.81, "Hgg": 19.9, "H4q": 5.53, "Hqql": 3.03,
                  "Tbqq": 79.5, "Tbl": 2.69, "Wqq": 25.6, "Zqq": 11.8},
}

#: ParT-plain (no pair features, trained separately) on JetClass, as quoted by 2512.00210
#: (docs/analyses.md#published-reference-numbers; accuracy only).
PART_PLAIN_PUBLISHED = {
    "jetclass": {"source": "ParT plain, as quoted in arXiv:2512.00210", "accuracy": 0.849},
}

#: Interaction-dependent (D) and non-binary (N) computation of ParT on JetClass
#: (arXiv:2512.00210, docs/analyses.md#rates-and-token-coverage; jet sample size not stated).
INTERACTION_PUBLISHED = {
    "source": "arXiv:2512.00210 (JetClass)",
    "rate_D": 0.036, "coverage_D": 0.854, "rate_N": 0.0088, "coverage_N": 0.421, "pcc_phi": 0.229,
}

_TOPK_REJ_ORDER = ("Hbb", "Hcc", "Hgg", "H4q", "Hqql", "Tbqq", "Tbl", "Wqq", "Zqq")


def _topk_row(accuracy, auc, *rejections):
    return {"accuracy": accuracy, "auc": auc,
            "rejection": dict(zip(_TOPK_REJ_ORDER, rejections, strict=True))}


#: Top-k attention at inference on the pretrained ParT_full, JetClass (Wang et al., ML4PS 2024,
#: Table 1; docs/analyses.md#published-reference-numbers). Key ``"all"`` is their k = 128 (= the unrestricted baseline).
TOPK_PUBLISHED = {
    "source": "Wang et al. 2024, Table 1 (JetClass, ParT_full)",
    "rows": {
        1: _topk_row(0.770, 0.9754, 4396, 1325, 58, 246, 1944, 2384, 6601, 217, 175),
        2: _topk_row(0.798, 0.9795, 5780, 1862, 67, 390, 2894, 4219, 10050, 286, 231),
        3: _topk_row(0.814, 0.9817, 6757, 2268, 73, 515, 3460, 5917, 11111, 341, 272),
        4: _topk_row(0.825, 0.9831, 7326, 2558, 79, 661, 3884, 7813, 12422, 379, 299),
        6: _topk_row(0.838, 0.9849, 8621, 3063, 89, 938, 4474, 12821, 13889, 438, 339),
        10: _topk_row(0.851, 0.9865, 9852, 3670, 103, 1352, 5102, 20619, 15748, 502, 375),
        20: _topk_row(0.859, 0.9875, 11111, 4237, 118, 1802, 5263, 29412, 16000, 539, 399),
        30: _topk_row(0.860, 0.9877, 10989, 4193, 122, 1859, 5362, 33898, 16129, 543, 402),
        "all": _topk_row(0.861, 0.9877, 10638, 4149, 123, 1864, 5479, 32787, 15873, 543, 402),
    },
}
