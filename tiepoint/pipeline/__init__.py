"""Pipelines over many images, each stage resumable: ``extract`` (features into HDF5), ``pairs`` (which pairs
to match), ``matching`` (pairs into a match file), ``verify`` (two-view geometries), ``reconstruct`` (COLMAP
database and incremental mapping); ``backends`` runs the stages locally or on Ray."""

from .extract import ExtractionSummary, NoImagesError, extract_features, find_images

__all__ = ["ExtractionSummary", "NoImagesError", "extract_features", "find_images"]
