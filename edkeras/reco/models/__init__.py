"""Model builders for electron-direction reconstruction, by name (docs/formats.md §5.3).

Method notes: ``docs/methods.md``, section ``edkeras.reco.models``.

Example:
    >>> from edkeras.reco.models import build_model
    >>> model = build_model("compact", head="vmf", energy_conditioning=True)
    >>> sorted(t.name for t in model.inputs)
    ['energy', 'view_u', 'view_v', 'view_x']
    >>> model.predict(inputs)["direction"].shape      # (N, 4): unit vector and κ
"""

from __future__ import annotations

import edkeras.reco.ensemble_model
import edkeras.reco.keras_metrics
import edkeras.reco.losses  # noqa: F401  (registers the loss classes for load_model)
from edkeras.reco.models import attention_v19, baseline_v15, compact, multiscale_v20, residual_v18  # noqa: F401
from edkeras.reco.models.attention_v19 import plane_attention_model
from edkeras.reco.models.registry import HEADS, REGISTRY, build_model, builder_options
from edkeras.reco.models.summary import count_flops, model_summary, summary_table

__all__ = [
    "HEADS",
    "REGISTRY",
    "build_model",
    "builder_options",
    "count_flops",
    "model_summary",
    "plane_attention_model",
    "summary_table",
]
