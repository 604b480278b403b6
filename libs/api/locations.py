"""``Location`` of a created object: Starlette's ``request.url_for``, with the
route's path looked up once.

``url_for`` walks the routers (the platform's mounts, then the service's
routes) to find the route by name, on every call: about 4 % of an
enrolment's CPU in its HTTP worker (py-spy, bench/README.md, sixth pass).
The path found depends only on the router and the route's name, so its
template (the path with a marker where each parameter goes) is kept per
router (until the router is dropped, as tests drop apps) and filled in per
call; the URL is then made absolute from the request as Starlette does.
Values Starlette's path convertor would refuse (empty, or holding a ``/``)
take Starlette's own path, and fail there as before.
"""

from __future__ import annotations

import weakref
from typing import Any

from starlette.datastructures import URLPath
from starlette.requests import Request

#: id(router) -> (name, parameter names) -> the route's path template. By id:
#: FastAPI's routers are not hashable; each entry leaves with its router.
_templates: dict[int, dict[tuple[str, tuple[str, ...]], URLPath]] = {}


def _marker(param: str) -> str:
    return f"__binome_param_{param}__"


def url_for(request: Request, name: str, **params: str) -> str:
    """``str(request.url_for(name, **params))``, the same URL."""
    router = request.scope.get("router") or request.scope.get("app")
    if router is None or any(not value or "/" in value for value in params.values()):
        return str(request.url_for(name, **params))
    kept = _templates.get(id(router))
    if kept is None:
        kept = _templates[id(router)] = {}
        weakref.finalize(router, _templates.pop, id(router), None)
    key = (name, tuple(sorted(params)))
    template = kept.get(key)
    if template is None:
        template = kept[key] = router.url_path_for(name, **{p: _marker(p) for p in params})
    path = str(template)
    for param, value in params.items():
        path = path.replace(_marker(param), value)
    return str(URLPath(path, protocol=template.protocol, host=template.host).make_absolute_url(request.base_url))
