"""This project's benchmarks beyond matching accuracy: robust solvers, RaCo keypoints, reconstruction of the
temple ring, upsamplers and model costs. Each writes its records under ``benchmarks/``."""
