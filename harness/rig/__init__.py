"""Floor rig: what a run drives and reads while it plays. The exporter process, the source writer,
the buffer tap, Locust runs (locustfiles run in a subprocess), the timeline sampler. Below the step
kinds, which drive it through their ``StepContext``."""
