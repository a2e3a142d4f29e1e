"""The local certificate authority that signs the proxy's https certificate.

Created once in CORSPROXY_HOME (the user's data folder by default), its key readable by the user
only, and trusted once with `corsproxy trust`; leaf.py signs the proxy's certificate with it.
When mkcert's authority exists (`mkcert -CAROOT` names a folder with rootCA.pem and
rootCA-key.pem), that one is used instead: a machine that already trusts mkcert needs no second
authority. Certificates are made with `cryptography`; nothing shells out to openssl.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import os
import shutil
import socket
import subprocess
import sys
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

from corsproxy.tls import AuthorityError

__all__ = ["Authority", "AuthorityError", "data_home", "load_authority", "mkcert_root"]

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
CA_DAYS = 3650  # ten years, as mkcert's: trusting it is a step the user takes once
ORGANIZATION = "corsproxy local development CA"


@dataclass(frozen=True)
class Authority:
    """A certificate authority whose key is at hand: corsproxy's own, or mkcert's."""

    kind: Literal["corsproxy", "mkcert"]
    cert_path: Path
    key_path: Path
    cert: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes
    created: bool = False  # made just now

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the certificate, hex: what a user compares in a browser's dialog."""
        return self.cert.fingerprint(hashes.SHA256()).hex()

    @property
    def common_name(self) -> str:
        names = self.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(names[0].value) if names else ORGANIZATION

    @property
    def nickname(self) -> str:
        """Its name in NSS databases: the common name and a piece of the fingerprint, so a
        re-created authority never collides with the one trusted before."""
        return f"{self.common_name} {self.fingerprint[:12]}"

    def describe(self) -> str:
        whose = "corsproxy's local authority" if self.kind == "corsproxy" else "mkcert's authority"
        return f"{whose} {self.cert_path}"


def data_home(env: Mapping[str, str], platform: str = sys.platform) -> Path:
    """CORSPROXY_HOME, else the user's data folder: $XDG_DATA_HOME/corsproxy or
    ~/.local/share/corsproxy on Linux, ~/Library/Application Support/corsproxy on macOS,
    %LOCALAPPDATA%\\corsproxy on Windows."""
    given = env.get("CORSPROXY_HOME", "").strip()
    if given:
        return Path(given).expanduser()
    home = Path(env.get("HOME") or env.get("USERPROFILE") or Path.home())
    if platform == "win32":
        return Path(env.get("LOCALAPPDATA") or home / "AppData" / "Local") / "corsproxy"
    if platform == "darwin":
        return home / "Library" / "Application Support" / "corsproxy"
    xdg = env.get("XDG_DATA_HOME", "").strip()
    base = Path(xdg) if xdg and os.path.isabs(xdg) else home / ".local" / "share"
    return base / "corsproxy"


def mkcert_root(env: Mapping[str, str]) -> Path | None:
    """mkcert's CAROOT when mkcert is installed and its authority exists (with its key)."""
    program = shutil.which("mkcert", path=env.get("PATH"))
    if program is None:
        return None
    try:
        found = subprocess.run(
            [program, "-CAROOT"], capture_output=True, text=True, timeout=10, env=dict(env)
        )
    except (OSError, subprocess.SubprocessError):
        return None
    root = Path(found.stdout.strip())
    if found.returncode != 0 or not root.is_absolute():
        return None
    if (root / "rootCA.pem").is_file() and (root / "rootCA-key.pem").is_file():
        return root
    return None


def load_authority(env: Mapping[str, str], now: dt.datetime | None = None) -> Authority:
    """mkcert's authority when there is one, else corsproxy's own, created on first use."""
    now = now or dt.datetime.now(dt.UTC)
    root = mkcert_root(env)
    if root is not None:
        return read_authority("mkcert", root / "rootCA.pem", root / "rootCA-key.pem", now)
    home = data_home(env)
    with locked(home):
        cert_path, key_path = home / CA_FILE, home / CA_KEY_FILE
        if not cert_path.exists() and not key_path.exists():
            return create_authority(home, now)
        return read_authority("corsproxy", cert_path, key_path, now)


@contextlib.contextmanager
def locked(home: Path) -> Iterator[None]:
    """Two proxies starting at once must not each make an authority (or a leaf): the folder is
    created (mode 0700) and held under an exclusive lock meanwhile."""
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock = os.open(home / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as error:
        reason = (error.strerror or str(error)).lower()
        raise AuthorityError(
            f"cannot use {home} for the local certificate authority: {reason}; "
            "set CORSPROXY_HOME to a folder you can write"
        ) from None
    try:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; a race there only costs a reissue
            yield
            return
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
    finally:
        os.close(lock)  # closing releases the lock


def create_authority(home: Path, now: dt.datetime) -> Authority:
    """A new ECDSA P-256 authority, valid CA_DAYS, that may sign leaves only (pathlen 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    who = _user_at_host()
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, who),
            x509.NameAttribute(NameOID.COMMON_NAME, f"corsproxy local CA {who}"[:64]),
        ]
    )
    skid = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    start = now - dt.timedelta(hours=1)  # a clock a little behind still accepts it
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_CA_USAGE, critical=True)
        .add_extension(skid, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(skid), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = home / CA_FILE, home / CA_KEY_FILE
    write_private(key_path, private_pem(key))
    write_public(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return Authority("corsproxy", cert_path, key_path, cert, key, created=True)


_CA_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


def read_authority(
    kind: Literal["corsproxy", "mkcert"], cert_path: Path, key_path: Path, now: dt.datetime
) -> Authority:
    """Load an authority; a missing half, a key of another certificate or an expired authority is
    an AuthorityError that says how to start afresh."""
    afresh = (
        f"remove {cert_path} and {key_path} to make a new one (then run corsproxy trust again)"
        if kind == "corsproxy"
        else "repair it with mkcert, or uninstall mkcert to use corsproxy's own authority"
    )
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except OSError as error:
        reason = (error.strerror or str(error)).lower()
        raise AuthorityError(f"cannot read {error.filename}: {reason}; {afresh}") from None
    except (ValueError, TypeError) as error:
        unusable = f"the authority in {cert_path} is unusable ({error})"
        raise AuthorityError(f"{unusable}; {afresh}") from None
    if not isinstance(key, typing.get_args(CertificateIssuerPrivateKeyTypes)):
        raise AuthorityError(f"{key_path} is not a key that can sign certificates; {afresh}")
    if _public(cert.public_key()) != _public(key.public_key()):
        raise AuthorityError(f"{key_path} is not the key of {cert_path}; {afresh}")
    if cert.not_valid_after_utc <= now:
        raise AuthorityError(
            f"the authority in {cert_path} expired on {cert.not_valid_after_utc:%Y-%m-%d}; {afresh}"
        )
    return Authority(kind, cert_path, key_path, cert, key)


def key_readable_by_others(authority: Authority) -> bool:
    """corsproxy's key file with group or other permission bits: anyone who reads it can sign
    certificates this user's browsers trust."""
    if authority.kind != "corsproxy" or os.name != "posix":
        return False
    try:
        return authority.key_path.stat().st_mode & 0o077 != 0
    except OSError:
        return False


def private_pem(key: CertificateIssuerPrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_private(path: Path, data: bytes) -> None:
    """Write a file readable by the user only, atomically: it is never seen half written, nor
    with wider permissions for a moment."""
    _write(path, data, 0o600)


def write_public(path: Path, data: bytes) -> None:
    _write(path, data, 0o644)


def _write(path: Path, data: bytes, mode: int) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def _public(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _user_at_host() -> str:
    """Who made the authority, as mkcert names its own: it tells authorities apart in a store."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = "user"
    return f"{user}@{socket.gethostname() or 'localhost'}"
