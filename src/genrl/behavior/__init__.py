"""genrl.behavior (see the modules)."""
