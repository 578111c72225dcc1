"""The loops that move models: the inner loop (and later the outer loops and rollback)."""
