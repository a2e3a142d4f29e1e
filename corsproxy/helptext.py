"""The examples under each subcommand's --help: real command lines, then what to know.

cli.py passes these as argparse epilogs (RawDescriptionHelpFormatter keeps their layout);
tests/test_cli.py runs every example line through the parser, so none goes stale.
"""

from __future__ import annotations

MAIN = """\
start here:
  corsproxy demo --open                    see CORS fail and pass in your browser
  corsproxy serve http://localhost:8000    put the proxy in front of your API

`corsproxy COMMAND --help` shows each command's options and examples.
"""

SERVE = """\
examples:
  corsproxy serve http://localhost:8000
      the proxy on http://127.0.0.1:8080 in front of your API: point the app at
      http://localhost:8080; pages on any localhost port may call it
  corsproxy serve http://localhost:8000 --port 9000 --allow-origin http://app.test:3000
      another port, and a page origin that is not localhost
  corsproxy serve -c corsproxy.yaml --https --open
      routes and rules from a file, over https (run `corsproxy trust` once), and the
      inspector opened in your browser

settings: flags over CORSPROXY_* variables over the file over the defaults. Without
-c, a corsproxy.yaml in the current folder is read; the start-up output names the
file it read (`config: ...`) and what the flags changed in it. Saving the file (or
kill -HUP) applies it while the proxy runs; a file with mistakes is not applied
and the proxy keeps serving (--no-reload: no watching).

the inspector: every exchange as the browser judged it, at the `inspector:` URL
the start-up output prints (its token is the key; --no-inspector: none).

the log: one line per request: time, method, path, origin, the CORS verdict (on a
terminal: green allowed, yellow fixed by the proxy, red refused or 5xx), what the
proxy corrected, status, duration. NO_COLOR=1 turns the colours off.
"""

CHECK = """\
examples:
  corsproxy check
      the corsproxy.yaml in the current folder
  corsproxy check -c staging.yaml
      another file
  CORSPROXY_UPSTREAM=http://localhost:8000 corsproxy check
      with the environment, as `serve` would see it

exit status: 0 when valid, with the effective settings (defaults filled in) and the
route table printed; 2 with every problem, one line each: FILE:LINE: key: what is wrong.
"""

DEMO = """\
examples:
  corsproxy demo --open
      start it and open the page in your browser
  corsproxy demo --port-base 9000
      the page on 9000, the proxy on 9001, the backend on 9002
  corsproxy demo --port-base 0
      any three free ports

One process runs all three on 127.0.0.1 and needs no network; a busy port is swapped
for a free one, and the first line says which. The proxy's log shows the page's own
requests; each card's diagnosis (what `corsproxy doctor` says) is not in it. Ctrl-C
stops all three.
"""
