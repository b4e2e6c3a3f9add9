"""sheet layer."""
