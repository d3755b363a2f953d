"""gather: the source image's own interpreter describes itself and collects the raw
runtime root.

Runs inside the `gather` build stage as `python3 gather.py CONFIG OUT`, with whatever
interpreter the source image has (CPython 3.9 to 3.14, glibc or musl, /usr/local or
/usr). Nothing here assumes a layout: every path comes from the interpreter (sys,
sysconfig, ssl) or from the ELF headers of the files it runs. chroot-pip runs it as
`python3 gather.py --graft STAGE BUILD_ROOT`.

This script only finds the package dpy_gather next to it, which holds the code (its
__init__ lists the modules); dpy_gather/gather.py says what OUT receives.

Failures print one `DPY-ERROR <kind>: <message>` line on stderr and exit 3; dpy turns
that line into its own error. Warnings are `DPY-WARN <message>` lines.

Pure standard library, Python 3.9 syntax.
"""

import os
import sys

# The package is found next to this file even when the interpreter leaves the script's
# directory off sys.path (-I, -P, PYTHONSAFEPATH).
_here = os.path.dirname(os.path.abspath(__file__))
if _here not in sys.path:
    sys.path.insert(0, _here)

# No __pycache__ beside the package: /opt/dpy is part of the -buildroot image, and the
# graft runs in users' build stages. Restored at once, so the run itself writes the
# bytecode it always did.
_dont_write = sys.dont_write_bytecode
sys.dont_write_bytecode = True
try:
    from dpy_gather.main import main
    # Still importable from here, as tests/data/zip_reads_probe.py does.
    from dpy_gather.compile import compile_stdlib_file, recorded_name
finally:
    sys.dont_write_bytecode = _dont_write


if __name__ == "__main__":
    sys.exit(main(sys.argv))
