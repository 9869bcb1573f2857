"""Training: teachers, losses, the trainer and one recipe per model family.

Models never import this package; it imports them.
"""
