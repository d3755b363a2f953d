#!/bin/sh
# Runs gather.py with the source image's own interpreter, after checking there is one
# and that it runs: both failures are reported as one DPY-ERROR line for dpy to show.
py="$(command -v python3 || command -v python || true)"
if [ -z "$py" ]; then
    echo "DPY-ERROR no-python: the source image has no python3 on PATH; pass a Python image with --source-image" >&2
    exit 3
fi
if ! "$py" -c pass >/dev/null 2>/tmp/dpy-python.err; then
    echo "DPY-ERROR broken-python: the source's $py does not run ($(head -n 1 /tmp/dpy-python.err)); its ELF loader or a shared library may be missing from the source image" >&2
    exit 3
fi
exec "$py" /opt/dpy/gather.py /opt/dpy/config.json /dpy-out
