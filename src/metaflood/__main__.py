import sys

from metaflood.cli import main

sys.exit(main())
