"""A pass-through file system for the exporter's directories that fails chosen calls and, like
Jepsen's lazyfs, can forget what was written but never fsynced (harness.infra.faultyfs.operations)."""
