"""Floor catalogue: what is played. The scenario model (a workload, a timeline of step kinds,
expectations), incident files (the replay currency) and the registry of scenario modules. It sits
above the step kinds because a scenario holds them."""
