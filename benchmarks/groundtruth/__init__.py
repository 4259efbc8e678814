"""Rendered ground-truth clips with known motion (CMU BVH on the default body, Blender), for benchmarks."""
