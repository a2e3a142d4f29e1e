"""The command line: serve, trust, check, doctor, demo; turns results into text and exit codes.

`corsproxy` (the console script) and `python -m corsproxy` both call main().
Exit codes: 0 ok, 1 a browser would block (doctor), 2 bad use or bad configuration.
"""

from __future__ import annotations

import argparse
import os
import ssl
import sys
from collections.abc import Sequence

from corsproxy import __version__, helptext

USAGE_ERROR = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="corsproxy",
        description="A local-development reverse proxy that fixes and explains CORS.",
        epilog=helptext.MAIN,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"corsproxy {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the proxy in front of a backend",
        description="Run the proxy: the browser calls it, it forwards to UPSTREAM and answers\n"
        "with the CORS headers the browser wants.",
        epilog=helptext.SERVE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "upstream",
        nargs="?",
        metavar="UPSTREAM",
        help="backend base URL, e.g. http://localhost:8000 (one route at /)",
    )
    serve.add_argument(
        "-c", "--config", metavar="FILE", help="YAML config file (default ./corsproxy.yaml if any)"
    )
    serve.add_argument(
        "--host",
        metavar="H",
        help="interface to listen on (default 127.0.0.1; 0.0.0.0 lets your LAN in too)",
    )
    serve.add_argument("--port", metavar="N", help="port to listen on (default 8080)")
    serve.add_argument(
        "--workers",
        metavar="N",
        help="processes serving the port, e.g. one per CPU core (default 1; Linux)",
    )
    serve.add_argument(
        "--allow-origin",
        action="append",
        metavar="O",
        dest="allow_origins",
        help="a page origin to allow, e.g. http://app.test:3000 (repeatable); replaces "
        "cors.allow_origins (default: localhost, any port)",
    )
    serve.add_argument(
        "--log-level",
        metavar="L",
        help="info (default: a line per request), debug (and its headers), warning (only "
        "refusals and failures) or error",
    )
    serve.add_argument(
        "--no-inspector",
        action="store_false",
        dest="inspector",
        default=None,
        help="no inspector page at /__corsproxy/ (inspector.enabled: false)",
    )
    serve.add_argument(
        "--open", action="store_true", help="open the inspector in the default browser"
    )
    serve.add_argument(
        "--https",
        action="store_true",
        default=None,
        help="serve https with a certificate from the local authority (listen.tls: auto)",
    )

    trust = commands.add_parser(
        "trust", help="make this machine's browsers trust the local certificate authority"
    )
    trust.add_argument(
        "--system", action="store_true", help="also the system store (needs root; curl, Python)"
    )
    trust.add_argument(
        "--print", action="store_true", dest="print_only", help="only print the commands"
    )
    trust.add_argument("--uninstall", action="store_true", help="remove it from the same stores")
    serve.add_argument(
        "--no-reload",
        action="store_false",
        dest="reload",
        default=None,
        help="do not watch the config file for changes (reload: false); SIGHUP still reloads it",
    )

    check = commands.add_parser(
        "check",
        help="validate a config and print the effective settings",
        description="Validate a config as `serve` would load it, and print the effective settings.",
        epilog=helptext.CHECK,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument(
        "-c", "--config", metavar="FILE", help="YAML config file (default ./corsproxy.yaml if any)"
    )

    doctor = commands.add_parser(
        "doctor",
        help="check a server's CORS the way a browser does",
        description="Act as a browser: send the preflight (when one is needed) and the request"
        " straight to URL, and explain whether Chromium and Firefox would allow it, naming the"
        " failure as their consoles and MDN do.",
        epilog="""examples:
  corsproxy doctor http://localhost:8000/api/items --origin http://localhost:5173
  corsproxy doctor http://localhost:8000/api/login --origin http://localhost:5173 \\
      --method POST -H 'Content-Type: application/json' --data '{"user": "a"}' --credentials
  corsproxy doctor https://api.example.com/v1/me --origin https://app.example.com \\
      --method DELETE --preflight-only --json

exit codes:
  0  a browser would allow it (every engine doctor knows)
  1  a browser would block it (the last line says why; --json: "verdict", "engines")
  2  bad use: a bad URL, origin or header, an unreadable --data-file, a host that
     cannot be reached""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    doctor.add_argument("url", metavar="URL", help="the URL the page fetches")
    doctor.add_argument(
        "--origin",
        required=True,
        metavar="O",
        help="the page's origin, e.g. http://localhost:5173 (scheme://host[:port])",
    )
    doctor.add_argument(
        "--method",
        default="GET",
        metavar="M",
        help="the fetch() method (default GET); spelled as the page spells it: 'patch' stays"
        " lowercase, as browsers send it",
    )
    doctor.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        dest="headers",
        metavar="'Name: value'",
        help="a request header the page sets (repeatable)",
    )
    body = doctor.add_mutually_exclusive_group()
    body.add_argument(
        "--data",
        metavar="TEXT",
        help="send TEXT as the request body (as fetch() does with a string body, Content-Type"
        " text/plain;charset=UTF-8 unless -H sets one)",
    )
    body.add_argument(
        "--data-file", metavar="FILE", help="send the bytes of FILE as the request body"
    )
    doctor.add_argument(
        "--credentials",
        action="store_true",
        help="as fetch(..., {credentials: 'include'}): -H Cookie is sent, and the response must"
        " allow credentials",
    )
    doctor.add_argument(
        "--preflight-only",
        action="store_true",
        help="stop after the preflight: the request itself is never sent (safe for POST, PUT,"
        " DELETE); without a preflight, nothing is sent",
    )
    doctor.add_argument(
        "--insecure", action="store_true", help="accept any TLS certificate (self-signed servers)"
    )
    doctor.add_argument(
        "--json", action="store_true", help="print one JSON document instead of the text report"
    )

    demo = commands.add_parser(
        "demo",
        help="see CORS fail and pass in your browser",
        description="A backend without CORS, the proxy in front of it, and a page that calls\n"
        "both: each kind of request blocked straight, and passing through the proxy.",
        epilog=helptext.DEMO,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument(
        "--port-base",
        type=int,
        default=None,
        metavar="N",
        help="the page on N, the proxy on N+1, the backend on N+2 (default 8700; 0: any free)",
    )
    demo.add_argument("--open", action="store_true", help="open the page in your browser")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return USAGE_ERROR
    handler = {
        "serve": _serve,
        "trust": _trust,
        "check": _check,
        "doctor": _doctor,
        "demo": _demo,
    }[args.command]
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 0


def _overrides(args: argparse.Namespace, with_flags: bool):
    """The flags as load() takes them (`check` reads only -c); a reload reuses them."""
    from corsproxy.config.load import Overrides

    if not with_flags:
        return Overrides(config=args.config)
    return Overrides(
        config=args.config,
        upstream=args.upstream,
        host=args.host,
        port=args.port,  # validated (and reported) by load()
        workers=args.workers,
        allow_origins=tuple(args.allow_origins) if args.allow_origins else None,
        log_level=args.log_level,
        inspector=args.inspector,
        reload=args.reload,
        https=args.https,
    )


def _load(overrides, with_flags: bool):
    """Load settings from flags, environment and file; print every problem and return None."""
    from corsproxy.config.load import ConfigError, load

    try:
        return load(overrides, os.environ)
    except ConfigError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        count = len(error.problems)
        tail = "; nothing was started" if with_flags else ""
        print(
            f"corsproxy: {count} problem{'s' if count != 1 else ''} found{tail}",
            file=sys.stderr,
        )
        return None


def _serve(args: argparse.Namespace) -> int:
    overrides = _overrides(args, with_flags=True)
    settings = _load(overrides, with_flags=True)
    if settings is None:
        return USAGE_ERROR
    from corsproxy.inspector import web as inspector_web
    from corsproxy.serve import server, workers
    from corsproxy.serve.reload import Reloader
    from corsproxy.tls import AuthorityError

    settings = inspector_web.with_token(settings)  # one token for every worker
    reloader = Reloader(overrides, os.environ, settings)  # load() again on a save or SIGHUP
    try:
        # listen.tls: auto is settled here, once, before any worker is forked.
        settings, notes = server.resolve_tls(settings)
        reloader.applied = settings  # a reload keeps the leaf issued now
        if settings.listen.workers > 1:
            return workers.run(settings, open_inspector=args.open, reloader=reloader, notes=notes)
        server.run_loop(server.serve_forever(settings, args.open, reloader, notes))
        return 0
    except ssl.SSLError as exc:
        print(f"corsproxy: cannot use the https certificate: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except OSError as exc:
        where = f"{settings.listen.host}:{settings.listen.port}"
        reason = (exc.strerror or str(exc)).lower()
        print(
            f"corsproxy: cannot listen on {where}: {reason}; "
            "choose another with --port or listen.port",
            file=sys.stderr,
        )
        return USAGE_ERROR
    except AuthorityError as exc:
        print(f"corsproxy: {exc}; nothing was started", file=sys.stderr)
        return USAGE_ERROR


def _trust(args: argparse.Namespace) -> int:
    from corsproxy.tls import trust

    return trust.run(args.system, args.print_only, args.uninstall)


def _check(args: argparse.Namespace) -> int:
    settings = _load(_overrides(args, with_flags=False), with_flags=False)
    if settings is None:
        return USAGE_ERROR
    from corsproxy.config.describe import describe

    print(describe(settings))
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from corsproxy.doctor import probe

    return probe.run(
        args.url,
        args.origin,
        args.method,
        args.headers,
        args.credentials,
        args.insecure,
        args.json,
        data=args.data,
        data_file=args.data_file,
        preflight_only=args.preflight_only,
    )


def _demo(args: argparse.Namespace) -> int:
    from corsproxy.demo import app

    return app.run(port_base=args.port_base, open_browser=args.open)
