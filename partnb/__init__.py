"""partnb: a notebook-first, reproducible companion to the Particle Transformer attention papers.

"Why Is Attention Sparse in Particle Transformer?" (NeurIPS 2025, arXiv:2512.00210) and
"Interpreting Transformers for Jet Tagging" (Wang et al., ML4PS @ NeurIPS 2024).
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
