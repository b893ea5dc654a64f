"""Receiving country submissions: find, archive, decode and load them verbatim into `raw`."""
