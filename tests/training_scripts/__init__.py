"""Training scripts written the way data scientists write them, for the inner loop and lifecycle tests.

Each is a whole, stand-alone script (no loopline import): its own data, its own MLflow calls.
"""
