"""``python -m mmzoo`` (also how torchrun starts ``mmzoo train``)."""

import sys

from mmzoo.cli import main

sys.exit(main())
