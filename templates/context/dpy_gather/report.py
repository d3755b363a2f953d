"""How the gather stage speaks to dpy on stderr: a failure is one
`DPY-ERROR <kind>: <message>` line and exit 3, which dpy turns into its own error; a
warning is one `DPY-WARN <message>` line, also kept for layout.json."""

import sys


def fail(kind, message):
    sys.stderr.write("DPY-ERROR %s: %s\n" % (kind, message))
    sys.exit(3)


def warn(message, warnings):
    sys.stderr.write("DPY-WARN %s\n" % message)
    warnings.append(message)
