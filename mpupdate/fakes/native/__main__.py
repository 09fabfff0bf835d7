"""``python -m mpupdate.fakes.native [--target T] [DIR]``: build the native fake, print its path."""

import sys

from .build import main

sys.exit(main())
