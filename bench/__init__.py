"""Benchmarks (`python -m bench`, `make bench`): each figure is measured next to its baseline in the same run.

They are not tests: they print their figures, the target and whether it was met, and write them to
`bench/results/<name>.json`; they never fail the test suite.
"""
