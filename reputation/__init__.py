"""Reputation: the SQLite store, E.164 numbers, lists, call-pattern statistics, scoring,
policy and feedback. Free of sockets; never imports ``proxy``, ``api`` or ``challenge``."""
