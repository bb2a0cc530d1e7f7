"""The console: server-rendered pages over the same library as the CLI.

`app.create_app` builds the Starlette application: `/healthz` and `/metrics` when the service
provides them, the static files, the login form, and one module per page under `pages/`
(stories, search, rules, feeds, deliveries), each exporting `ROUTES`. `server.WebServer` runs
it with uvicorn in a thread of its own, so a busy or stuck service loop never stops the
health probe or the pages from answering. `security` holds what protects it: the token when
the console is bound beyond loopback, CSRF on every POST, and the response headers (a
Content-Security-Policy that allows no inline script). Pages render through `render.page`
(Jinja2 with auto-escaping: feed text is always shown as text) and read the store through
`state.console(request)`.
"""
