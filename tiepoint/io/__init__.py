"""Input and output: images, feature and match files."""

from .image import ImageLike, as_image, load_image

__all__ = ["ImageLike", "as_image", "load_image"]
