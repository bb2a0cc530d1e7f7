"""One module per console page; each exports `ROUTES` (Starlette routes) for `app.create_app`."""
