"""loopline's HTTP clients share one TLS configuration per process: certificates are still checked, and a
CA named in SSL_CERT_FILE (a company's own, say) is trusted as httpx itself trusts it."""

from __future__ import annotations

import datetime
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from loopline.errors import UsageError
from loopline.net import bind, free_port, http_client, http_request


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key (no public CA vouches for it), and the key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "loopline test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, *_args: object) -> None:
        pass


@contextmanager
def https_server(cert_file: Path, key_file: Path) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_server_no_trusted_ca_vouches_for_is_refused_and_one_named_in_ssl_cert_file_is_trusted(
    tmp_path: Path,
) -> None:
    cert_file, key_file = self_signed(tmp_path)
    with https_server(cert_file, key_file) as url:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            http_request("GET", f"{url}/")
        with http_client() as client, pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            client.get(f"{url}/")
        # a process started with SSL_CERT_FILE trusts that CA, as httpx does
        script = f"from loopline.net import http_request; print(http_request('GET', '{url}/').text)"
        trusted = subprocess.run(
            [sys.executable, "-c", script],
            env={"SSL_CERT_FILE": str(cert_file), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert trusted.returncode == 0, trusted.stderr
    assert trusted.stdout.strip() == "hello"


def test_a_socket_that_cannot_listen_says_which_option_to_change() -> None:
    taken = bind("127.0.0.1", 0, reuse_port=False)
    try:
        port = taken.getsockname()[1]
        with pytest.raises(
            UsageError, match=rf"cannot listen on 127.0.0.1:{port}: .*; choose another --port$"
        ):
            bind("127.0.0.1", port, reuse_port=False)
    finally:
        taken.close()
    with pytest.raises(UsageError, match=r"cannot listen on no\.such\.host\.invalid:\d+: .*; check --host$"):
        bind("no.such.host.invalid", free_port(), reuse_port=False)
    with pytest.raises(UsageError, match=r"cannot listen on 192\.0\.2\.1:\d+: .*; check --host$"):
        bind("192.0.2.1", free_port(), reuse_port=False)  # an address this machine does not have
    with pytest.raises(UsageError, match="70000 is not a TCP port; choose a --port from 1 to 65535"):
        bind("127.0.0.1", 70000, reuse_port=False)
