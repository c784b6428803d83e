"""Every streaming analysis consumer speaks one protocol (partnb.analysis.stream.Consumer):
``update(key, record, batch)`` in, ``rows()`` (a table of flat dicts) out."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import numpy as np
import pytest
from test_interaction import random_inputs, random_model

import partnb.analysis
from partnb.analysis import (
    attention_features,
    differential,
    emergence,
    interaction,
    magnitude,
    sparsity,
    substructure,
    u_structure,
)
from partnb.analysis.stream import Consumer, stream_attention


def _consumer_classes():
    found = []
    for info in pkgutil.iter_modules(partnb.analysis.__path__):
        module = importlib.import_module(f"partnb.analysis.{info.name}")
        for obj in vars(module).values():
            if (inspect.isclass(obj) and obj.__module__ == module.__name__ and hasattr(obj, "update")
                    and obj is not Consumer):
                found.append(obj)
    return found


def test_every_class_with_update_is_a_consumer():
    classes = _consumer_classes()
    assert len(classes) >= 10
    missing = [c.__qualname__ for c in classes if not callable(getattr(c, "rows", None))]
    assert missing == []


def _build(inputs, model):
    L, H = model.config["num_layers"], model.config["num_heads"]
    vectors = inputs.vectors.astype(np.float64)
    subjets = substructure.kt_subjets(vectors, inputs.n_particles, 2)
    is_lepton = np.zeros(inputs.mask[:, 0].shape, bool)
    is_lepton[:, 1] = True
    return [emergence.MonitorStats(), emergence.HeadMagnitudes(L, H),
            interaction.InteractionCounter(), magnitude.MagnitudeRatio(L),
            sparsity.AttentionSparsity(L, H, ["a", "b", "c"]), u_structure.UStructure(),
            u_structure.RowVariation(), substructure.LeptonAttentionFraction(L - 1, is_lepton),
            substructure.InterSubjetAttentionFraction(subjets),
            substructure.GraphJetAttention(L - 1, [0, 2]),
            attention_features.JetAttentionFeatures(len(inputs), subjets={2: subjets},
                                                    is_lepton=is_lepton),
            differential.SignedWeights(L)]


def test_each_consumer_gives_a_table_after_a_pass(one_torch_thread):
    model = random_model()
    inputs = random_inputs([9, 5, 7, 3, 8, 6])
    consumers = _build(inputs, model)
    assert {type(c) for c in consumers} == set(_consumer_classes())
    stream_attention(model, inputs, consumers, batch_size=4, capture=("A", "U", "L", "P"),
                     as_coded=True)
    for consumer in consumers:
        assert isinstance(consumer, Consumer)
        rows = consumer.rows()
        assert rows and all(isinstance(r, dict) for r in rows), type(consumer).__name__
        keys = set(rows[0])
        assert all(set(r) == keys for r in rows), type(consumer).__name__
        assert all(np.isscalar(v) or v is None for r in rows for v in r.values())


@pytest.mark.parametrize("labelled", [sparsity.AttentionSparsity, magnitude.MagnitudeRatio])
def test_rows_is_the_table_the_notebooks_write(labelled, one_torch_thread):
    model = random_model()
    inputs = random_inputs([9, 5, 7])
    L, H = model.config["num_layers"], model.config["num_heads"]
    consumer = (labelled(L, H, ["a", "b", "c"]) if labelled is sparsity.AttentionSparsity
                else labelled(L))
    stream_attention(model, inputs, [consumer], batch_size=2, capture=("A", "U", "L", "P"),
                     as_coded=True)
    assert consumer.rows("trained") == consumer.summary_rows("trained")
