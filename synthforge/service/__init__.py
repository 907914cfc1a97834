"""synthforge as a service (`synthforge serve`, docs/service.md): the HTTP API, its pages, tenants and API keys,
uploads, a queue of job processes that survives a restart, and results. A top layer: it imports the engine, and
nothing below imports it. Needs the `service` extra."""
