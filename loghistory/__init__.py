"""Log history shared by the exporter and the receiver: log config, pattern scanner, archives, triage, mining."""
