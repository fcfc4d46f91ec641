"""Floor judge: what was read and how it is reconciled. The sinks' readers, the ledger of
acknowledged writes, reconciliation, anomalies (duplicates, order) and the dead-letter checks.
The checks themselves are the ``harness.checks`` registry, one floor up."""
