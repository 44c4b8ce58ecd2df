"""The Azure Functions entry point: creates the FunctionApp and registers the blueprints."""

import os

import azure.functions as func

from cosync.routes import admin, appuser, maintenance

if os.environ.get("FUNCTIONS_WORKER_RUNTIME"):
    # Inside the Functions host, load the secrets now: a missing one stops the start with a
    # message that names it and its store, instead of failing every request later.
    from cosync.secrets import get_secrets

    get_secrets()

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(appuser.bp)
app.register_functions(admin.bp)
app.register_functions(maintenance.bp)
