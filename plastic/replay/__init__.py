"""Zarr spike traces: schema, recorder, replay and analysis."""
