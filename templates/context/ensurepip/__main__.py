"""`python -m ensurepip`: explain and exit 0, so `python -m venv` succeeds."""

import ensurepip

if __name__ == "__main__":
    raise SystemExit(ensurepip._main())
