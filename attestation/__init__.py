"""STIR/SHAKEN: Identity header and PASSporT handling, verification (STI-VS), signing
(STI-AS), certificates, test PKI and the tamper-evident attestation log.

Free of sockets except the x5u HTTPS fetcher in ``attestation.certs``; never imports
``proxy``, ``api`` or ``challenge``."""
