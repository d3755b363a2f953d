"""A small web app managed by uv, served from a dpy runtime image: werkzeug routes and
serves, Jinja2 renders, MarkupSafe (a C extension) escapes."""

import platform
import sys

from jinja2 import Environment
from markupsafe import escape
from werkzeug.routing import Map, Rule
from werkzeug.serving import run_simple
from werkzeug.wrappers import Request, Response

PAGE = Environment(autoescape=True).from_string(
    "<p>Hello, {{ name }}!</p><p>Python {{ python }} on {{ machine }}</p>"
)
ROUTES = Map([Rule("/", endpoint="hello"), Rule("/_health", endpoint="health")])


@Request.application
def app(request):
    endpoint, _ = ROUTES.bind_to_environ(request.environ).match()
    if endpoint == "health":
        return Response("ok")
    body = PAGE.render(
        name=escape(request.args.get("name", "World")),
        python=platform.python_version(),
        machine=platform.machine(),
    )
    return Response(body, mimetype="text/html")


if __name__ == "__main__":
    # werkzeug's own server is enough for an example; put a WSGI server in front for production.
    run_simple("0.0.0.0", int(sys.argv[1]) if len(sys.argv) > 1 else 8080, app)
