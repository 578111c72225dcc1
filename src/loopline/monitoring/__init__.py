"""Production monitoring: samples of what endpoints answer, drift against a reference, policies."""
