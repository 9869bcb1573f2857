"""Pipelines over many images: feature extraction into resumable HDF5 files."""

from .extract import ExtractionSummary, NoImagesError, extract_features, find_images

__all__ = ["ExtractionSummary", "NoImagesError", "extract_features", "find_images"]
