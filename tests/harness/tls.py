"""Private certificate authorities for the TLS tests (python3-cryptography).

    ca = CA(workdir, "test-ca")              # ca.cert_path: the CA certificate (PEM)
    cert, key = ca.issue("server")           # server cert for 127.0.0.1 / localhost
    cert, key = ca.issue("client", client=True)
    d = cert_dir(workdir / "certs", ca)      # DIR/ca.crt (+ client.cert/client.key)

Everything is written under the given work directory; keys are unencrypted PEM.
"""

import datetime
import ipaddress
import os
import shutil

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(key, path):
    with open(path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption()))
    os.chmod(path, 0o600)


def _write_cert(cert, path):
    with open(path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))


class CA:
    def __init__(self, workdir, name="registryfs-test-ca"):
        self.workdir = os.path.abspath(str(workdir))
        os.makedirs(self.workdir, exist_ok=True)
        self.name = name
        self.key = _key()
        now = datetime.datetime.now(datetime.timezone.utc)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.cert = (x509.CertificateBuilder()
                     .subject_name(subject).issuer_name(subject)
                     .public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(days=1))
                     .not_valid_after(now + datetime.timedelta(days=2))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None),
                                    critical=True)
                     .add_extension(x509.KeyUsage(
                         digital_signature=True, content_commitment=False,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=True, crl_sign=True, encipher_only=False,
                         decipher_only=False), critical=True)
                     .add_extension(x509.SubjectKeyIdentifier.from_public_key(
                         self.key.public_key()), critical=False)
                     .sign(self.key, hashes.SHA256()))
        self.cert_path = os.path.join(self.workdir, name + ".crt")
        _write_cert(self.cert, self.cert_path)

    def issue(self, name, hosts=("127.0.0.1", "localhost"), client=False):
        """(certfile, keyfile) signed by this CA: a server cert for `hosts`, or a client cert."""
        key = _key()
        now = datetime.datetime.now(datetime.timezone.utc)
        b = (x509.CertificateBuilder()
             .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
             .issuer_name(self.cert.subject)
             .public_key(key.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(days=1))
             .not_valid_after(now + datetime.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                 self.key.public_key()), critical=False))
        if client:
            b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                                critical=False)
        else:
            sans = []
            for h in hosts:
                try:
                    sans.append(x509.IPAddress(ipaddress.ip_address(h)))
                except ValueError:
                    sans.append(x509.DNSName(h))
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
            b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                                critical=False)
        cert = b.sign(self.key, hashes.SHA256())
        cert_path = os.path.join(self.workdir, name + ".crt")
        key_path = os.path.join(self.workdir, name + ".key")
        _write_cert(cert, cert_path)
        _write_key(key, key_path)
        return cert_path, key_path


def cert_dir(path, ca=None, host=None, client=None):
    """A containers-certs.d style directory: PATH[/HOST]/ca.crt, and client.cert/client.key
    when client=(certfile, keyfile). Returns PATH."""
    path = os.path.abspath(str(path))
    d = os.path.join(path, host) if host else path
    os.makedirs(d, exist_ok=True)
    if ca is not None:
        shutil.copyfile(ca.cert_path, os.path.join(d, "ca.crt"))
    if client:
        shutil.copyfile(client[0], os.path.join(d, "client.cert"))
        shutil.copyfile(client[1], os.path.join(d, "client.key"))
    return path
