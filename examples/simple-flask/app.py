"""A tiny Flask application served from a dpy runtime image."""

import platform

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello():
    return "<p>Hello, World!</p>"


@app.get("/_health")
def health():
    return "ok"


@app.get("/_arch")
def arch():
    return platform.machine()


if __name__ == "__main__":
    # Flask's own server is enough for an example; put a WSGI server in front for production.
    app.run(host="0.0.0.0", port=8080)
