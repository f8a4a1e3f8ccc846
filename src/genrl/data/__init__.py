"""Offline datasets: expert policies for collection (more to come: episode format, collection, sampling)."""
