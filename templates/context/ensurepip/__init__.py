"""ensurepip, as shipped in a dpy runtime image: a no-op that says why.

A distroless runtime image carries no pip, by design: packages are installed at build
time, into the -buildroot image's $BUILD_ROOT (`chroot-pip install ...`), and copied into
the runtime image. `python -m venv` calls ensurepip; this stub lets it succeed without
pip. Importing this module has no side effects.
"""

import sys

__all__ = ["version", "bootstrap"]

_MESSAGE = (
    "ensurepip is disabled in this distroless image: it carries no pip. "
    "Install packages at build time with chroot-pip in the -buildroot image, "
    "then copy its site-packages into this image. (venv works, without pip.)\n"
)


def version():
    """No bundled pip: there is no version to report."""
    return None


def bootstrap(*, root=None, upgrade=False, user=False, altinstall=False,
              default_pip=False, verbosity=0):
    """Explains on stderr and returns, as if pip had been installed."""
    sys.stderr.write(_MESSAGE)


def _main(argv=None):
    sys.stderr.write(_MESSAGE)
    return 0
