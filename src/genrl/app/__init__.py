"""Command-line application (``genrl``)."""
