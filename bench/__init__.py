"""Ratio benchmarks: what memori adds to a call, measured against a bare baseline.

`./dev bench` (= `python -m bench`) runs them all; see `bench/__main__.py` for options.
"""
