"""spitwall: the composition root and command line.

Only this package knows every other package: it reads the config, builds the parts and
wires them together. `proxy`, `attestation`, `reputation`, `api` and `challenge` never
import it.
"""

__version__ = "0.1.0"
