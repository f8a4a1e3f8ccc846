"""Offline datasets (paper section 4.1, Table 4; official ``tools/replay.py``).

* :mod:`genrl.data.episode` -- the episode ``.npz`` format (official-compatible), validation, atomic writes;
* :mod:`genrl.data.dataset` -- dataset folders: manifest, episodes, per-embedder embedding store;
* :mod:`genrl.data.importer` -- import of official episodes (``clip_video`` -> embedding store);
* :mod:`genrl.data.experts` -- state-based SAC experts (train with SB3, run with our small actor);
* :mod:`genrl.data.collect` -- ``genrl collect``: exploration + expert episodes, parallel, resumable;
* :mod:`genrl.data.sampler` -- the training sequence sampler.
"""
