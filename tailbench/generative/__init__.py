"""Generative models of a dataset's nuisance (GIT's MUNIT-style generator) and their cache.

Kept import-free so that ``tailbench --help`` stays fast: import the submodules.
"""
