"""Security headers on every response and the audit line of every request made with a key, as a plain ASGI
middleware: Starlette's `@app.middleware("http")` (BaseHTTPMiddleware) runs each request through an extra task and
memory stream, about a tenth of a poll's server CPU in benchmarks/service.py."""

import logging

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Content-Security-Policy": ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                                "frame-ancestors 'self'; form-action 'self'; base-uri 'none'"),
    "Cache-Control": "no-store",
}
_DEFAULTS = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]


class SecurityHeaders:
    """Adds each of SECURITY_HEADERS a response does not set itself; after the response starts, writes the audit
    line (key, tenant, method, path, status; never the key) when a route identified a caller (`deps.principal`
    leaves it in the request's state)."""

    def __init__(self, app, audit: logging.Logger):
        self.app, self.audit = app, audit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in _DEFAULTS if k not in present]
                message = {**message, "headers": headers}
                who = scope.get("state", {}).get("principal")
                if who is not None:
                    self.audit.info("%s %s %s %s %s", who.key_id, who.tenant_id, scope["method"], scope["path"],
                                    message["status"])
            await send(message)

        await self.app(scope, receive, send_with_headers)
