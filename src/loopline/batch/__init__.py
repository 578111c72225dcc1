"""Batch endpoints and batch scoring jobs."""
