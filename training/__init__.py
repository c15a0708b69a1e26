"""promptsynth training."""
