"""The inspector: every exchange the proxy handled, as the browser judged it, in a page at
/__corsproxy/ (record, store, access, har and replay are pure or nearly; web.py is the shell)."""
