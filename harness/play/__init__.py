"""Floor play: one scenario played on a stack. The gate (many scenarios on one stack), the
runner (one scenario), the player (its timeline), ``Run`` (what a step sees, as a ``StepContext``),
the verdict (heal, drain, read, judge) and the letters offered again after heal."""
