"""The Azure Functions entry point: creates the FunctionApp and registers the blueprints."""

import azure.functions as func

from cosync.routes import admin, appuser, maintenance

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(appuser.bp)
app.register_functions(admin.bp)
app.register_functions(maintenance.bp)
