"""A real SMTP server for the mail test (aiosmtpd): one port that requires
STARTTLS before anything else and AUTH (PLAIN or LOGIN, after STARTTLS) with
a fixed user and password, one with implicit TLS (TLS from the first byte)
and AUTH, and one plain port that offers no STARTTLS at all.
Each accepted message is written, decoded, as JSON into the output directory.

usage: server.py CERT KEY OUT_DIR TLS_PORT PLAIN_PORT USER PASSWORD IMPLICIT_PORT
"""
import asyncio
import email
import email.policy
import json
import os
import ssl
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

cert, key, out_dir, tls_port, plain_port, user, password, implicit_port = sys.argv[1:9]
os.makedirs(out_dir, exist_ok=True)


class Save:
    def __init__(self, port_name):
        self.port_name = port_name
        self.n = 0

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.n += 1
        record = {
            "port": self.port_name,
            "tls": session.ssl is not None or self.port_name == "implicit",
            "auth": session.auth_data if session.authenticated else None,
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(msg["From"]),
            "to": str(msg["To"]),
            "subject": str(msg["Subject"]),
            "content_type": msg.get_content_type(),
            "charset": msg.get_content_charset(),
            "body": msg.get_content(),
        }
        path = os.path.join(out_dir, f"{time.time_ns()}-{self.port_name}-{self.n}.json")
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(record, f, ensure_ascii=False)
        os.rename(path + ".tmp", path)
        return "250 OK queued"


def authenticator(server, session, envelope, mechanism, auth_data):
    if not isinstance(auth_data, LoginPassword):
        return AuthResult(success=False, handled=False)
    ok = auth_data.login == user.encode() and auth_data.password == password.encode()
    if not ok:
        # handled=False: aiosmtpd then answers 535 itself (its default, True, answers nothing).
        return AuthResult(success=False, handled=False)
    return AuthResult(success=True, auth_data=auth_data.login.decode())


ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)

tls = Controller(
    Save("tls"),
    hostname="127.0.0.1",
    port=int(tls_port),
    tls_context=ctx,
    require_starttls=True,
    authenticator=authenticator,
    auth_required=True,
    auth_require_tls=True,
)
# The whole connection is TLS here, so aiosmtpd's STARTTLS-based check of AUTH is off.
implicit = Controller(
    Save("implicit"),
    hostname="127.0.0.1",
    port=int(implicit_port),
    ssl_context=ctx,
    authenticator=authenticator,
    auth_required=True,
    auth_require_tls=False,
)
plain = Controller(Save("plain"), hostname="127.0.0.1", port=int(plain_port))
tls.start()
implicit.start()
plain.start()
import logging
logging.basicConfig(level=logging.DEBUG if os.environ.get("SMTP_TEST_DEBUG") else logging.WARNING)
print(f"smtp test server: STARTTLS+AUTH on {tls_port}, TLS+AUTH on {implicit_port}, plain on {plain_port}", flush=True)
try:
    asyncio.run(asyncio.sleep(float(os.environ.get("SMTP_TEST_SERVER_SECONDS", "600"))))
finally:
    tls.stop()
    implicit.stop()
    plain.stop()
