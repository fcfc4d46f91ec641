"""Protocol proxies: per-request faults inside a server's protocol, on the links Toxiproxy serves
(harness.infra.proxies.base explains how they are put on a link)."""
