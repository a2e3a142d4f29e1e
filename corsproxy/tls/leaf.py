"""The certificate `listen.tls: auto` serves: every name the browser may use, signed by the
local authority, kept in CORSPROXY_HOME and reissued when its names change or expiry nears.

`corsproxy serve` calls leaf_for() once (server.resolve_tls), before any worker is forked; the
names and the reissue decision are pure functions (wanted_names, reissue_reason), table-tested.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from corsproxy.tls.authority import (
    Authority,
    data_home,
    key_readable_by_others,
    load_authority,
    locked,
    private_pem,
    write_private,
)

LEAF_FILE = "leaf.pem"  # its key, then the certificate: one file, replaced atomically
LEAF_DAYS = 820  # Apple refuses TLS certificates valid longer than 825 days
RENEW_DAYS = 30  # a leaf with fewer days left is reissued at start
ANY_INTERFACE = ("0.0.0.0", "::", "")
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class LeafFacts:
    """What reissue_reason() needs to know about a stored leaf."""

    names: frozenset[str]
    not_before: dt.datetime
    not_after: dt.datetime
    by_authority: bool  # signed by the authority in use now


@dataclass(frozen=True)
class Leaf:
    """The certificate to serve: `path` holds its key and itself (PEM), for load_cert_chain."""

    path: Path
    names: tuple[str, ...]
    not_after: dt.datetime
    authority: Authority
    issued_because: str | None  # why it was issued at this start; None: the stored one serves


def normal_name(name: str) -> str:
    """A name as a certificate holds it: an IP address in its short form, a host name lowercase,
    without the brackets a Host header puts around IPv6."""
    bare = name.strip().strip("[]")
    try:
        return ipaddress.ip_address(bare).compressed
    except ValueError:
        return bare.lower()


def wanted_names(
    listen_host: str, allowed_hosts: Sequence[str], machine: Sequence[str]
) -> tuple[str, ...]:
    """localhost, 127.0.0.1, ::1, the listen host (this machine's addresses instead when it
    listens on all interfaces) and listen.allowed_hosts, each once, in that order."""
    host = normal_name(listen_host)
    listen = machine if host in ANY_INTERFACE else (host,)
    names: list[str] = []
    for name in (*LOOPBACK_NAMES, *listen, *allowed_hosts):
        name = normal_name(name)
        if name and name not in names:
            names.append(name)
    return tuple(names)


def machine_addresses() -> list[str]:
    """This machine's addresses a LAN neighbour could use: those of its host name and those the
    kernel would send from (a UDP connect sends no packet). Loopback and link-local are left out."""
    found: list[str] = []
    with contextlib.suppress(OSError):
        for info in socket.getaddrinfo(socket.gethostname(), None, type=socket.SOCK_STREAM):
            found.append(str(info[4][0]))
    for family, probe in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as udp:
                udp.connect((probe, 9))  # documentation addresses: nothing is ever sent
                found.append(str(udp.getsockname()[0]))
        except OSError:
            continue
    addresses = []
    for text in found:
        try:
            address = ipaddress.ip_address(text.split("%")[0])
        except ValueError:
            continue
        if not (address.is_loopback or address.is_link_local or address.is_unspecified):
            addresses.append(address.compressed)
    return list(dict.fromkeys(addresses))


def reissue_reason(
    stored: LeafFacts | str | None, wanted: Sequence[str], now: dt.datetime
) -> str | None:
    """Why a new leaf is needed, or None to keep the stored one. `stored` is a string when the
    file is there but unusable (the string says why)."""
    if stored is None:
        return "there was none yet"
    if isinstance(stored, str):
        return stored
    if not stored.by_authority:
        return "the one there was signed by another authority"
    if frozenset(wanted) != stored.names:
        changes = [f"+{n}" for n in wanted if n not in stored.names]
        changes += [f"-{n}" for n in sorted(stored.names - set(wanted))]
        return f"the names changed: {' '.join(changes)}"
    if stored.not_after <= now:
        return f"the one there expired on {stored.not_after:%Y-%m-%d}"
    if stored.not_after - now < dt.timedelta(days=RENEW_DAYS):
        return f"the one there expires on {stored.not_after:%Y-%m-%d}"
    if stored.not_before > now:
        return "the one there is not valid yet (was the clock changed?)"
    return None


def issue_leaf(
    authority: Authority, names: Sequence[str], now: dt.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A server certificate (ECDSA P-256) for `names`, valid LEAF_DAYS or until the authority
    expires, whichever comes first; usable for serverAuth only."""
    key = ec.generate_private_key(ec.SECP256R1())
    start = now - dt.timedelta(hours=1)  # a clock a little behind still accepts it
    end = min(start + dt.timedelta(days=LEAF_DAYS), authority.cert.not_valid_after_utc)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "corsproxy development certificate"),
            x509.NameAttribute(NameOID.COMMON_NAME, names[0]),
        ]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(authority.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_LEAF_USAGE, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(_general_names(names)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(_authority_key_id(authority), critical=False)
    )
    plain = isinstance(authority.key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey)
    return builder.sign(authority.key, None if plain else hashes.SHA256()), key


_LEAF_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


def _general_names(names: Sequence[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for name in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            out.append(x509.DNSName(name))
    return out


def _authority_key_id(authority: Authority) -> x509.AuthorityKeyIdentifier:
    try:
        ski = authority.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.cert.public_key())  # type: ignore[arg-type]
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski.value)


def cert_names(cert: x509.Certificate) -> frozenset[str]:
    """The DNS names and IP addresses a certificate is valid for, as normal_name() writes them."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return frozenset()
    dns = san.get_values_for_type(x509.DNSName)
    ips = san.get_values_for_type(x509.IPAddress)
    return frozenset([*(normal_name(n) for n in dns), *(ip.compressed for ip in ips)])


def read_leaf(path: Path, authority: Authority) -> LeafFacts | str | None:
    """The stored leaf's facts; None when there is none; a reason when it is unusable."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        return f"the one there could not be read ({(error.strerror or str(error)).lower()})"
    try:
        cert = x509.load_pem_x509_certificate(data)
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        return "the one there could not be read"
    if _spki(key.public_key()) != _spki(cert.public_key()):
        return "the one there had a key of another certificate"
    try:
        cert.verify_directly_issued_by(authority.cert)
        by_authority = True
    except (ValueError, TypeError, InvalidSignature):  # another issuer, or its key did not sign
        by_authority = False
    return LeafFacts(
        cert_names(cert), cert.not_valid_before_utc, cert.not_valid_after_utc, by_authority
    )


def _spki(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def leaf_for(
    listen_host: str,
    allowed_hosts: Sequence[str],
    env: Mapping[str, str],
    now: dt.datetime | None = None,
) -> Leaf:
    """The leaf to serve for this listen host: the stored one when it still fits, else a new one
    (written to CORSPROXY_HOME/leaf.pem, mode 0600). Raises AuthorityError."""
    now = now or dt.datetime.now(dt.UTC)
    host = normal_name(listen_host)
    machine = machine_addresses() if host in ANY_INTERFACE else ()
    names = wanted_names(listen_host, allowed_hosts, machine)
    authority = load_authority(env, now)
    home = data_home(env)
    path = home / LEAF_FILE
    with locked(home):
        stored = read_leaf(path, authority)
        reason = reissue_reason(stored, names, now)
        if reason is None and isinstance(stored, LeafFacts):
            return Leaf(path, names, stored.not_after, authority, None)
        cert, key = issue_leaf(authority, names, now)
        write_private(path, private_pem(key) + cert.public_bytes(serialization.Encoding.PEM))
    return Leaf(path, names, cert.not_valid_after_utc, authority, reason)


def start_notes(leaf: Leaf) -> list[str]:
    """What `serve` prints under its start-up line: which authority signed the certificate, for
    which names, and how to make browsers trust it."""
    authority = leaf.authority
    notes = []
    if authority.created:
        notes.append(
            f"corsproxy: created corsproxy's local certificate authority in "
            f"{authority.cert_path.parent} (its key is readable by you only)"
        )
    issued = f"; issued now: {leaf.issued_because}" if leaf.issued_because else ""
    notes.append(
        f"corsproxy: https certificate for {', '.join(leaf.names)} "
        f"(until {leaf.not_after:%Y-%m-%d}{issued}), signed by {authority.describe()}"
    )
    if authority.kind == "mkcert":
        notes.append(
            "corsproxy: browsers trust it once `mkcert -install` (or `corsproxy trust`) has run"
        )
    else:
        notes.append(
            "corsproxy: to make this machine's browsers trust it (once): corsproxy trust "
            "(undo: corsproxy trust --uninstall)"
        )
    if key_readable_by_others(authority):
        notes.append(
            f"corsproxy: warning: {authority.key_path} can be read by other users, who could then "
            f"make certificates your browsers trust; chmod 600 {authority.key_path}"
        )
    return notes
