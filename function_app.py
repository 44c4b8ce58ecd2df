"""The Azure Functions entry point: creates the FunctionApp and registers the blueprints."""

import logging
import os

import azure.functions as func

from cosync.routes import (
    account,
    admin,
    admin_invites,
    admin_users,
    appuser,
    invites,
    keys,
    maintenance,
    password,
    phone,
    profile,
    signup_link,
    social,
    two_factor,
    wellknown,
)

if os.environ.get("FUNCTIONS_WORKER_RUNTIME"):
    # Inside the Functions host, check the secrets now: a missing one stops the start with a
    # message that names it and its store. Other failures (Key Vault not reachable) are left
    # to the first request, which retries, so a short outage does not unload every function.
    from cosync.secrets import MissingSecretError, get_secrets

    try:
        get_secrets()
    except MissingSecretError:
        raise
    except Exception:
        logging.getLogger("cosync").exception("could not load the secrets at start; requests will retry")

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(appuser.bp)
app.register_functions(admin.bp)
app.register_functions(admin_users.bp)
app.register_functions(maintenance.bp)
app.register_functions(wellknown.bp)
app.register_functions(keys.bp)
app.register_functions(two_factor.bp)
app.register_functions(phone.bp)
app.register_functions(profile.bp)
app.register_functions(social.bp)
app.register_functions(invites.bp)
app.register_functions(admin_invites.bp)
app.register_functions(password.bp)
app.register_functions(account.bp)
app.register_functions(signup_link.bp)
