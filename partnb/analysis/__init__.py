"""Analyses: one module per family, each streaming over batches of jets."""
