import sys

from spitwall.cli import main

sys.exit(main())
