"""The demo harness: a loopback stack, demo, drill and an on-call sink. Never imported by the product."""
