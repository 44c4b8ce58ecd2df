"""Timer-triggered housekeeping."""

import logging

import azure.functions as func

from cosync import db
from cosync.dates import utc_now

bp = func.Blueprint()
log = logging.getLogger(__name__)


@bp.function_name("purgeExpiredRecords")
@bp.timer_trigger(schedule="0 17 * * * *", arg_name="timer", run_on_startup=False)
def purge_expired_records(timer: func.TimerRequest) -> None:
    """Delete expired pending records and audit records past their retention every hour, for
    servers without TTL indexes (FerretDB)."""
    removed = db.purge_expired(db.get_database(), utc_now())
    log.info("purged expired records: %s", removed)
