"""Reliability runs for corsproxy: load (wrk), soak (mixed traffic, restarting upstream), shutdown.

Each run is one command (`python stress/load.py`, `stress/soak.py`, `stress/shutdown.py`);
tests/test_reliability.py calls the same functions with CI-sized numbers.
"""
