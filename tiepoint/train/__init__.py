"""Training: the photo corpus, homography pairs with augmentation, teachers, losses and trainers.

Models never import this package; it imports them.
"""
