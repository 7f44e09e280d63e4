"""Measured accuracy: ``archbench compare ... --data DIR --weights SOURCE``.

- :mod:`.data`: the image folder and its labels (no torch), checked by the plan.
- :mod:`.weights`: which weights each model loads (timm tags, checkpoints) and the checks
  that a checkpoint fits the model.
- :mod:`.preprocess`: each model's own evaluation transform (timm's pretrained configs).
- :mod:`.evaluate`: the evaluation pass and the top-k arithmetic.
- :mod:`.checks`: everything the plan refuses before anything runs.

The published figures are plain data on each variant (:mod:`archbench.core.accuracy`).
"""
