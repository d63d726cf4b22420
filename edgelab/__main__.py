import sys

from edgelab.cli import main

sys.exit(main())
