"""NASSegNet search space: ArchSpec, the Optuna space, the network builder, the analog cost model.

Pure functions of a spec: no training, no Ray, no MLflow.
"""

from .arch_spec import ArchSpec, SpecError
from .cost import Constraints, HardwareCost, hardware_cost, network_signature, violations
from .encoding import FEATURE_NAMES, encode, encode_many
from .network import NASSegNet, build
from .space import PRESETS, SpaceBounds, enumerate_specs, sample_specs, suggest

__all__ = ["ArchSpec", "SpecError", "Constraints", "HardwareCost", "hardware_cost", "network_signature", "violations",
           "FEATURE_NAMES", "encode", "encode_many", "NASSegNet", "build", "PRESETS", "SpaceBounds", "enumerate_specs", "sample_specs", "suggest"]
