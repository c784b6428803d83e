"""The Particle Transformer (weaver-core 0.4.x semantics), its attention variants, probes,
interventions, checkpoints."""

from partnb.model.checkpoint import (
    CheckpointError,
    fold_w05_into_w04,
    infer_config,
    load_state_dict_any,
    read_checkpoint_extra,
    save_checkpoint,
)
from partnb.model.part import (
    ATTENTION_VARIANTS,
    GELU_MIN,
    PENALTY_KINDS,
    AttentionPenalty,
    AttentionProbe,
    Intervention,
    ParticleTransformer,
    cls_layer_key,
    zero_pair_embed_params,
)

__all__ = [
    "ATTENTION_VARIANTS",
    "GELU_MIN",
    "PENALTY_KINDS",
    "AttentionPenalty",
    "AttentionProbe",
    "CheckpointError",
    "Intervention",
    "ParticleTransformer",
    "cls_layer_key",
    "fold_w05_into_w04",
    "infer_config",
    "load_state_dict_any",
    "read_checkpoint_extra",
    "save_checkpoint",
    "zero_pair_embed_params",
]
