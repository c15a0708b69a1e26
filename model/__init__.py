"""promptsynth model."""
