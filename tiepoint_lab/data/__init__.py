"""Training data: the photo corpus and homography pairs with photometric augmentation."""
