"""The GitHub workflow files loopline writes, the tier switch they consult, and the local runner."""
