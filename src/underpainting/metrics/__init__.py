"""Image metrics with a pinned, printed protocol: FID, KID, LPIPS, ArtFID (see docs/metrics.md)."""

from underpainting.metrics.artfid import artfid
from underpainting.metrics.evaluator import Evaluator
from underpainting.metrics.features import (
    EfficientNetLite0Features,
    FeatureExtractor,
    InceptionFeatures,
    MetricWeightsError,
    RandomFeatures,
    VGGStandIn,
)
from underpainting.metrics.fid import FID, KID, Precomputed
from underpainting.metrics.lpips import LPIPS, LPIPSNet
from underpainting.metrics.protocol import Protocol

__all__ = [
    "FID",
    "KID",
    "LPIPS",
    "EfficientNetLite0Features",
    "Evaluator",
    "FeatureExtractor",
    "InceptionFeatures",
    "LPIPSNet",
    "MetricWeightsError",
    "Precomputed",
    "Protocol",
    "RandomFeatures",
    "VGGStandIn",
    "artfid",
]
