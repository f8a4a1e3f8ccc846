"""Small shared utilities (atomic file writes, video files). Imported by every pipeline stage; imports none."""
