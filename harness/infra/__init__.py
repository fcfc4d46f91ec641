"""Floor infra: the stack and what keeps it clean. The running stack and its admin access,
Toxiproxy, the reaper and lifecycle (nothing leaks after Ctrl-C or kill -9), condition polls,
versions and paths."""
