"""Reference logits from weaver-core 0.4.17's ParticleTransformer (run in its own interpreter).

Usage::

    python tests/weaver_reference.py WEAVER_DIR STATE_DICT INPUTS OUTPUT

* ``WEAVER_DIR``: a directory holding the ``weaver`` package, made with
  ``.venv/bin/pip install --no-deps --target .weaver-0.4.17 weaver-core==0.4.17``;
* ``STATE_DICT``: a weaver-0.4.x state dict (keys ``mod.…``), as saved by
  :func:`partnb.model.checkpoint.save_checkpoint`;
* ``INPUTS``: ``torch.save``-d dict with ``config`` (keyword arguments of weaver's
  ``ParticleTransformer``) and ``calls``, a list of dicts with ``features`` (B, C, P),
  ``vectors`` (B, 4, P) and ``mask`` (B, 1, P);
* ``OUTPUT``: receives the list of logits, one (B, num_classes) tensor per call.

``python tests/weaver_reference.py init WEAVER_DIR CONFIG_JSON SEED OUTPUT`` instead saves a
weaver-format state dict of weaver's model built with the keyword arguments ``CONFIG_JSON``
and weaver's own random initialisation (what an official checkpoint looks like, untrained).

All calls go through one model instance in eval mode, in order, so weaver's sequence
trimmer (no-op for the first 5 calls) behaves as in a real evaluation. Only the model file
is imported (it needs torch alone), so weaver's numpy<2 pin does not matter. It runs in a
separate interpreter because the file's import-time ``torch.jit.script`` and its deprecated
``torch.cuda.amp.autocast`` emit warnings that the project's pytest settings turn into errors.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path


def load_weaver_part(weaver_dir: str | Path):
    """weaver's ``ParticleTransformer`` class, imported from ``weaver_dir``."""
    sys.path.insert(0, str(weaver_dir))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from weaver.nn.model.ParticleTransformer import ParticleTransformer
    return ParticleTransformer


def reference_logits(weaver_dir: str | Path, state_dict_path: str | Path,
                     inputs_path: str | Path) -> list:
    """Logits of weaver's model for every call in the inputs file."""
    import torch

    part_class = load_weaver_part(weaver_dir)
    inputs = torch.load(inputs_path, map_location="cpu", weights_only=True)
    wrapper = torch.nn.Module()
    wrapper.mod = part_class(**inputs["config"])  # keys 'mod.…' as in the checkpoints
    wrapper.load_state_dict(torch.load(state_dict_path, map_location="cpu", weights_only=True))
    wrapper.eval()
    outputs = []
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for call in inputs["calls"]:
            outputs.append(wrapper.mod(call["features"], call["vectors"], call["mask"]))
    return outputs


def save_random_weaver_model(weaver_dir: str | Path, config: dict, seed: int,
                             output_path: str | Path) -> None:
    """A weaver-format checkpoint (keys ``mod.…``) of weaver's own ``ParticleTransformer``
    built with ``config`` and weaver's initialisation under ``torch.manual_seed(seed)``."""
    import torch

    part_class = load_weaver_part(weaver_dir)
    torch.manual_seed(seed)
    wrapper = torch.nn.Module()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wrapper.mod = part_class(**config)
    torch.save(wrapper.state_dict(), output_path)


def main(argv: list[str]) -> int:
    if argv[:1] == ["init"] and len(argv) == 5:
        import json

        _, weaver_dir, config_json, seed, output_path = argv
        save_random_weaver_model(weaver_dir, json.loads(config_json), int(seed), output_path)
        return 0
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(1)
    weaver_dir, state_dict_path, inputs_path, output_path = argv
    torch.save(reference_logits(weaver_dir, state_dict_path, inputs_path), output_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
