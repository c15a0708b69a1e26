"""promptsynth patches."""
