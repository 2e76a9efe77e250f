"""NASSegNet search space: ArchSpec, the Optuna space, the network builder, the analog cost model.

Pure functions of a spec: no training, no Ray, no MLflow. The builder (``NASSegNet``, ``build``)
is imported on first use: everything else here needs no torch (a config is checked in a second).
"""

from .arch_spec import ArchSpec, SpecError
from .cost import Constraints, HardwareCost, hardware_cost, network_signature, violations
from .encoding import FEATURE_NAMES, encode, encode_many
from .space import PRESETS, SpaceBounds, enumerate_specs, sample_specs, suggest

__all__ = ["ArchSpec", "SpecError", "Constraints", "HardwareCost", "hardware_cost", "network_signature", "violations",
           "FEATURE_NAMES", "encode", "encode_many", "NASSegNet", "build", "PRESETS", "SpaceBounds", "enumerate_specs", "sample_specs", "suggest"]


def __getattr__(name: str):
    if name in ("NASSegNet", "build"):  # PEP 562: torch is loaded only where a network is built
        from . import network

        return getattr(network, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
