"""HTTPS in one command: the local certificate authority (authority.py, leaf.py) and
`corsproxy trust` (trust.py, stores.py). Imported only when `listen.tls: auto` or `trust` is used,
so plain http never loads `cryptography`."""


class AuthorityError(Exception):
    """The local authority cannot be read or made; str() says what to do. `serve` exits 2.
    Here, not in authority.py, so that catching it does not load `cryptography`."""
