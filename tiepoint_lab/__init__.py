"""tiepoint's lab: training, data preparation, this project's benchmark records and the reports made from
them.

The lab imports the core package :mod:`tiepoint`; the core never imports the lab. Its command is
``tiepoint-lab``.
"""
