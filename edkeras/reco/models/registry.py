"""The name → model-builder registry, with strict checking of builder options.

A builder is a plain function with keyword-only options, each with a default, returning an
uncompiled ``keras.Model``. :func:`build_model` looks a builder up by name, rejects
unknown options (naming the option and listing the valid ones) and bad values, and calls
it. The options shared by every builder are checked by :func:`check_common_options`,
which each builder also calls itself, so that calling a builder directly is as strict.

Example:
    >>> from edkeras.reco.models import build_model, builder_options
    >>> builder_options("compact")["head"]
    'direction'
    >>> model = build_model("compact", head="vmf", input_shape=(64, 32))
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from edkeras.core.errors import InputError

__all__ = [
    "COMMON_OPTIONS",
    "HEADS",
    "NORMALIZATIONS",
    "REGISTRY",
    "build_model",
    "builder_options",
    "check_common_options",
    "check_positive_int",
    "register",
]

REGISTRY: dict[str, Callable[..., Any]] = {}
"""Builder name → builder function (filled by the builder modules on import)."""

HEADS = ("direction", "vmf", "axial", "multitask")
"""Output heads: unit direction; direction + κ (vMF); axis + sense logit; direction + energy + ES probability."""

NORMALIZATIONS = ("log1p", "none")
"""Input normalisations inside the model (see :class:`edkeras.reco.models.layers.ADCNormalization`)."""

COMMON_OPTIONS = (
    "input_shape",
    "head",
    "energy_conditioning",
    "dropout",
    "filters",
    "depth",
    "dense_units",
    "dense_layers",
    "shared_branches",
    "normalization",
)
"""Options every builder accepts."""


def register(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator adding a builder to :data:`REGISTRY` under ``name``.

    The builder must take keyword-only options with defaults, including all of
    :data:`COMMON_OPTIONS`.
    """

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in REGISTRY and REGISTRY[name] is not fn:
            raise ValueError(f"model builder {name!r} is registered twice")
        params = inspect.signature(fn).parameters
        missing = [o for o in COMMON_OPTIONS if o not in params]
        if missing:
            raise TypeError(f"builder {name!r} lacks the common options {missing}")
        REGISTRY[name] = fn
        return fn

    return deco


def _builder(name: str) -> Callable[..., Any]:
    if name not in REGISTRY:
        raise InputError(f"model: unknown builder {name!r}; valid builders: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def builder_options(name: str) -> dict[str, Any]:
    """Option name → default value of the builder ``name``.

    Raises:
        InputError: ``name`` is not a registered builder.
    """
    fn = _builder(name)
    return {p.name: p.default for p in inspect.signature(fn).parameters.values() if p.kind is p.KEYWORD_ONLY}


def build_model(name: str, **options: Any) -> Any:
    """Build the uncompiled Keras model ``name`` with ``options`` (see :func:`builder_options`).

    Raises:
        InputError: unknown builder, unknown option (the message lists the valid ones), or
            a bad option value.
    """
    valid = builder_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise InputError(
            f"model {name!r}: unknown option {unknown[0]!r}; valid options: {', '.join(sorted(valid))}"
        )
    return REGISTRY[name](**options)


def check_positive_int(name: str, key: str, value: Any, minimum: int = 1) -> int:
    """Return ``value`` as an int ≥ ``minimum`` or raise InputError naming ``key``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"model {name!r}: option {key!r} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_common_options(name: str, options: dict[str, Any], min_size: int = 1) -> dict[str, Any]:
    """Validate the common options of builder ``name``; return them normalised.

    Args:
        name: builder name (for messages).
        options: at least the keys of :data:`COMMON_OPTIONS`.
        min_size: smallest image side (ticks or channels) the architecture accepts.

    Raises:
        InputError: naming the option, what was expected, and what was received.
    """
    out = dict(options)
    shape = options["input_shape"]
    if (
        not isinstance(shape, (tuple, list))
        or len(shape) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in shape)
        or min(shape) < min_size
    ):
        raise InputError(
            f"model {name!r}: option 'input_shape' must be (ticks, channels), two integers >= {min_size}, "
            f"got {shape!r}"
        )
    out["input_shape"] = (int(shape[0]), int(shape[1]))
    if options["head"] not in HEADS:
        raise InputError(
            f"model {name!r}: option 'head' must be one of {', '.join(HEADS)}; got {options['head']!r}"
        )
    if options["normalization"] not in NORMALIZATIONS:
        raise InputError(
            f"model {name!r}: option 'normalization' must be one of {', '.join(NORMALIZATIONS)}; "
            f"got {options['normalization']!r}"
        )
    for key in ("energy_conditioning", "shared_branches"):
        if not isinstance(options[key], bool):
            raise InputError(f"model {name!r}: option {key!r} must be true or false, got {options[key]!r}")
    d = options["dropout"]
    if isinstance(d, bool) or not isinstance(d, (int, float)) or not 0.0 <= d < 1.0:
        raise InputError(f"model {name!r}: option 'dropout' must be a number in [0, 1), got {d!r}")
    out["dropout"] = float(d)
    for key in ("filters", "depth", "dense_units"):
        out[key] = check_positive_int(name, key, options[key])
    out["dense_layers"] = check_positive_int(name, "dense_layers", options["dense_layers"], minimum=0)
    return out
