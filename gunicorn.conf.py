"""gunicorn reads this file from the working directory (where the Procfile runs).

The access log shows each request's path without its query string: the providers'
calls carry the UserSig (Tencent), Signature (ZEGO) and Sign (webhook) there, and a
log line must never hold one. No Referer either (a page URL with its query).
"""

access_log_format = (
    '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(a)s" %(M)sms'
)
