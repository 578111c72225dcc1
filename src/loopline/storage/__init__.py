"""Model files by content digest, and the datastores."""
