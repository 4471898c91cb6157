"""Apps that serve the shipped SavedModel through peer frameworks (LitServe, BentoML), for the
side-by-side comparison (`python -m benchmarks.compare --peers ...`). They run in the peers' own
virtual environments (benchmarks/peer_envs.py), so they import only the standard library,
TensorFlow, numpy and their framework: never the project's packages."""
