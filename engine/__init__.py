"""promptsynth's voice engine: theta schema, FM/ADSR voices, event queue, audio output."""

from engine.schema import (
    PARAM_NAMES,
    PARAMS,
    SCHEMA_VERSION,
    TIMBRE_NAMES,
    Param,
    Theta,
    ThetaError,
    check_value,
    clamp_array,
    from_learning,
    param,
    to_learning,
    upgrade_theta_dict,
)

__all__ = [
    "PARAM_NAMES",
    "PARAMS",
    "SCHEMA_VERSION",
    "TIMBRE_NAMES",
    "Param",
    "Theta",
    "ThetaError",
    "check_value",
    "clamp_array",
    "from_learning",
    "param",
    "to_learning",
    "upgrade_theta_dict",
]
