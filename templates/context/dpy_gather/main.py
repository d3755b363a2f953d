"""The two programs' command line (see templates/context/gather.py)."""

import json
import sys

from .gather import Gatherer
from .graft import graft


def main(argv):
    if len(argv) == 4 and argv[1] == "--graft":
        return 4 if graft(argv[2].rstrip("/"), argv[3].rstrip("/")) else 0
    if len(argv) != 3:
        sys.stderr.write("usage: gather.py CONFIG OUT | gather.py --graft STAGE BUILD_ROOT\n")
        return 2
    with open(argv[1]) as f:
        config = json.load(f)
    Gatherer(config, argv[2]).run()
    return 0
