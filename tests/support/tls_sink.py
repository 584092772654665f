"""A real SMTP server that offers STARTTLS, for the delivery tests (smtp-sink has no TLS).

Usage: tls_sink.py PORT FOLDER [implicit] [auth=USER:PASSWORD]

aiosmtpd listens on 127.0.0.1:PORT with a certificate for 127.0.0.1 issued by a
throwaway CA (trustme). It writes the CA to FOLDER/ca.pem before it listens, then each
message to FOLDER/message-N.eml: lines saying how it came (X-TLS: the TLS version of the
session, or "none"; X-Auth: the user who logged in, or "none"; X-Mail-From; X-Rcpt-To),
then the message as received. A
file appears whole (written aside, then renamed). With `implicit`, TLS starts with the
first byte (as on port 465) instead of with STARTTLS. With `auth=USER:PASSWORD`, AUTH
is offered over TLS and that login is the only one accepted (a client must log in
before MAIL). Runs until killed.
"""

import os
import ssl
import sys
import threading

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class Capture:
    def __init__(self, folder):
        self.folder = folder
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        # After STARTTLS the session says; with implicit TLS the transport does.
        if session.ssl:
            ssl_object = session.ssl["ssl_object"]
        else:
            ssl_object = server.transport.get_extra_info("ssl_object")
        tls = ssl_object.version() if ssl_object else "none"
        with self.lock:
            self.count += 1
            n = self.count
        path = os.path.join(self.folder, f"message-{n}.eml")
        user = session.auth_data.login.decode() if session.authenticated else "none"
        head = (
            f"X-TLS: {tls}\r\nX-Auth: {user}\r\nX-Mail-From: {envelope.mail_from}\r\n"
            f"X-Rcpt-To: {' '.join(envelope.rcpt_tos)}\r\n"
        )
        with open(path + ".part", "wb") as f:
            f.write(head.encode())
            f.write(envelope.original_content)
        os.rename(path + ".part", path)
        return "250 2.0.0 Ok: captured"


def main():
    port, folder, options = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(os.path.join(folder, "ca.pem"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    kwargs = (
        {"ssl_context": context} if "implicit" in options else {"tls_context": context}
    )
    login = next((o[5:] for o in options if o.startswith("auth=")), None)
    if login is not None:
        user, password = login.encode().split(b":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = auth_data.login == user and auth_data.password == password
            # handled=False: aiosmtpd then answers a failure itself (535).
            return AuthResult(success=ok, handled=False, auth_data=auth_data)

        kwargs.update(authenticator=authenticator, auth_required=True)
    controller = Controller(Capture(folder), hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
