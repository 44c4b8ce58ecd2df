"""The error codes of the wire contract and the exception that carries them.

The Cosync SDKs understand only HTTP 400 with a body of exactly `{"code": n, "message": "..."}`,
and they map `code` to their own error cases. The messages are protocol literals (typos
included) because the JavaScript SDK hands them to applications unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorCode:
    code: int
    message: str


INVALID_ADMIN_TOKEN = ErrorCode(400, "invalid admin token")
INVALID_APP_TOKEN = ErrorCode(400, "invalid app token")
APP_NOT_FOUND = ErrorCode(401, "app no longer exist")
APP_IS_SUSPENDED = ErrorCode(402, "app is suspended")
MISSING_PARAM = ErrorCode(403, "missing parameter")
USER_IS_SUSPENDED = ErrorCode(404, "user account is suspended")
INVALID_ACCESS_TOKEN = ErrorCode(405, "invalid access token")
APP_ISNOT_INVITATBLE = ErrorCode(406, "app does not support invitaion")
APP_ISNOT_SIGNUPABLE = ErrorCode(407, "app does not support signup")
APP_NO_GOOGLE_TWO_FACTOR = ErrorCode(408, "app does not support google two-factor verification")
APP_NO_PHONE_TWO_FACTOR = ErrorCode(409, "app does not support phone two-factor verification")
USER_NO_VERIFIED_PHONE = ErrorCode(410, "user does not have verified phone number")
SIGNUP_CODE_EXPRIRED = ErrorCode(411, "signup code expired.")
PHONE_NUMBER_ALREADY_IN_USE = ErrorCode(412, "phone number already in use")
APP_IS_MIGRATED = ErrorCode(413, "app is migrated")
APP_ISNOT_ANONYMOUS_LOGIN = ErrorCode(414, "app does not support anonymous login")
APP_ISNOT_APPLE_AUTHENTICATION = ErrorCode(415, "app does not support Apple Authentication")
APP_ISNOT_GOOGLE_AUTHENTICATION = ErrorCode(416, "app does not support Google Authentication")
INTERNAL_SERVER_ERROR = ErrorCode(500, "internal server error")
ACCESS_TOKEN_EXPRIRED = ErrorCode(501, "access token expired")
INVALID_CREDENTIALS = ErrorCode(600, "invalid login credentials")
HANDLE_ALREADY_REGISTERED = ErrorCode(601, "handle already registered")
INVALID_DATA = ErrorCode(602, "invalid data")
ACCOUNT_NOT_EXIST = ErrorCode(603, "account does not exist")
INVALID_METADATA = ErrorCode(604, "invalid metadata")
USERNAME_ALREADY_IN_USE = ErrorCode(605, "user name already assigned")
APP_ISNOT_USERNAME_LOGIN = ErrorCode(606, "app does not support username login")
USERNAME_DOES_NOT_EXIST = ErrorCode(607, "user name deos not exist")
ACCOUNT_IS_NOT_VERIFIED = ErrorCode(608, "account has not been verified")
INVALID_LOCALE = ErrorCode(609, "invalid locale")
EMAIL_ACCOUNT_ALREADY_EXIST = ErrorCode(610, "email account already exist")
APPLE_ACCOUNT_ALREADY_EXIST = ErrorCode(611, "Apple account already exist")
GOOGLE_ACCOUNT_ALREADY_EXIST = ErrorCode(612, "Google account already exist")
TOKEN_IS_INVALID = ErrorCode(613, "token is invalid")

# Codes this server adds for operator routes whose feature it does not carry over. The
# reference server has no such codes, so they sit outside its ranges.
FEATURE_NOT_SUPPORTED = ErrorCode(701, "not supported by this server")
APP_SERVICES_RETIRED = ErrorCode(702, "MongoDB App Services reached end of life on 2025-09-30")
EMAIL_NOT_SENT = ErrorCode(703, "e-mail provider did not accept the message")


class ApiError(Exception):
    """A failure returned to the client as the contract's error body.

    `detail` is for the log only and never reaches the client; `status` is 400 unless the
    contract names another status for the case, and `headers` are added to the response.
    """

    def __init__(
        self, error: ErrorCode, detail: str = "", status: int = 400, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail or error.message)
        self.error = error
        self.detail = detail
        self.status = status
        self.headers = headers or {}

    def body(self) -> dict[str, object]:
        return {"code": self.error.code, "message": self.error.message}
