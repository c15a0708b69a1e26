"""promptsynth server."""
