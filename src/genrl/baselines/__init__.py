"""genrl.baselines (see the modules)."""
