"""Language-model knowledge about items (features) and users (profiles)."""

from .items import ExtractionReport, FeatureRecord, FeatureStore, ItemFeatureExtractor, feature_text
from .users import UserProfiler, evidence_profile

__all__ = [
    "ExtractionReport",
    "FeatureRecord",
    "FeatureStore",
    "ItemFeatureExtractor",
    "UserProfiler",
    "evidence_profile",
    "feature_text",
]
