"""Published numbers the notebooks put beside ours (with where each comes from).

ParT: Qu, Li, Qian, "Particle Transformer for Jet Tagging", ICML 2022 (arXiv:2202.03772),
Tables 2-4. Zero-U: arXiv:2512.00210 (SPEC 4.8). Top-k: Wang et al., ML4PS 2024, Table 1.
All of them used detector-level (Delphes) jets for JetClass and Top Landscape and far more
training data; ours are generated at particle level at CPU scale.
"""

from __future__ import annotations

__all__ = ["PART_PUBLISHED", "ZERO_U_PUBLISHED"]

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
