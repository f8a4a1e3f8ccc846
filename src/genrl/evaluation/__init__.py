"""genrl.evaluation (see the modules)."""
