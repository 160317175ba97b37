"""The baseline for `make bench`: what a user would deploy instead of `intercom`.

A minimal Flask app answering Twilio's voice webhook with the same three cases and the
same decision rule as intercom (src/rules/call.rs), and validating `X-Twilio-Signature` the way
Twilio's RequestValidator does (HMAC-SHA1 over the public URL plus the sorted POST
parameters, with and without an explicit default port, constant-time compare), so the
comparison is fair: both servers do the same work per request.

  - caller is not the intercom (or no caller)  -> <Reject/>
  - window open                                -> <Play digits="ww9"/>
  - otherwise                                  -> <Dial> the resident(s), then <Say>

The open window is a small JSON file read on every call, because under gunicorn several
worker processes must agree on it (intercom keeps it in memory: it is one process). It is
changed with `POST /api/open` / `POST /api/close` and `Authorization: Bearer TOKEN`.

Settings come from the environment (see bench/run.sh):
  BASELINE_AUTH_TOKEN, BASELINE_PUBLIC_URL, BASELINE_INTERCOM, BASELINE_FORWARD_TO (comma
  separated), BASELINE_CONTROL_TOKEN, BASELINE_STATE_FILE.
"""

import base64
import hashlib
import hmac
import json
import os
import re
import time
from urllib.parse import urlsplit, urlunsplit
from xml.sax.saxutils import escape, quoteattr

from flask import Flask, Response, abort, request

AUTH_TOKEN = os.environ["BASELINE_AUTH_TOKEN"]
PUBLIC_URL = os.environ["BASELINE_PUBLIC_URL"].rstrip("/")
CONTROL_TOKEN = os.environ["BASELINE_CONTROL_TOKEN"]
STATE_FILE = os.environ["BASELINE_STATE_FILE"]
UNLOCK_DIGITS = "ww9"
DIAL_TIMEOUT = 25
NO_ANSWER = "Sorry, nobody is answering. Please try again later."

E164 = re.compile(r"^\+[1-9][0-9]{2,14}$")


def normalize(number):
    """E.164 or None, like src/model/phone.rs: separators dropped, '00' means '+'."""
    if number is None:
        return None
    compact = re.sub(r"[ \-.()\u00a0]", "", number.strip())
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    return compact if E164.match(compact) else None


INTERCOM = normalize(os.environ["BASELINE_INTERCOM"])
FORWARD_TO = [normalize(n) for n in os.environ["BASELINE_FORWARD_TO"].split(",") if n]

app = Flask(__name__)


def url_variants(url):
    """The URL as given and with the scheme's default port added or removed."""
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    out = [url]
    if default is None:
        return out
    if parts.port == default:
        out.append(urlunsplit(parts._replace(netloc=parts.hostname)))
    elif parts.port is None:
        out.append(urlunsplit(parts._replace(netloc=f"{parts.hostname}:{default}")))
    return out


def signature(url, params):
    data = url + "".join(k + v for k, v in sorted(params))
    mac = hmac.new(AUTH_TOKEN.encode(), data.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def signature_valid():
    given = request.headers.get("X-Twilio-Signature", "")
    url = PUBLIC_URL + request.path
    if request.query_string:
        url += "?" + request.query_string.decode()
    params = list(request.form.items(multi=True)) if request.method == "POST" else []
    ok = False
    for u in url_variants(url):
        ok |= hmac.compare_digest(signature(u, params), given)
    return ok


def window_open():
    try:
        with open(STATE_FILE) as f:
            until = json.load(f).get("open_until")
    except (OSError, ValueError):
        return False  # fail closed
    return until is not None and time.time() < until


def twiml(inner):
    body = '<?xml version="1.0" encoding="UTF-8"?>\n<Response>' + inner + "</Response>\n"
    return Response(body, content_type="text/xml; charset=utf-8", headers={"Cache-Control": "no-store"})


@app.route("/", methods=["GET", "POST"])
@app.route("/voice", methods=["GET", "POST"])
def voice():
    if not signature_valid():
        abort(403)
    params = request.form if request.method == "POST" else request.args
    caller = normalize(params.get("From"))
    if caller is None or INTERCOM is None or caller != INTERCOM:
        return twiml("<Reject/>")
    if window_open():
        return twiml(f"<Play digits={quoteattr(UNLOCK_DIGITS)}/>")
    if not FORWARD_TO:
        return twiml(f"<Say>{escape(NO_ANSWER)}</Say><Hangup/>")
    numbers = "".join(f"<Number>{escape(n)}</Number>" for n in FORWARD_TO)
    return twiml(
        f'<Dial answerOnBridge="true" timeout="{DIAL_TIMEOUT}">{numbers}</Dial><Say>{escape(NO_ANSWER)}</Say>'
    )


@app.route("/healthz")
def healthz():
    return Response("ok\n", content_type="text/plain; charset=utf-8")


def write_state(open_until):
    tmp = STATE_FILE + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"open_until": open_until}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, STATE_FILE)


def authorized():
    given = request.headers.get("Authorization", "")
    return hmac.compare_digest(given, "Bearer " + CONTROL_TOKEN)


@app.route("/api/open", methods=["POST"])
def api_open():
    if not authorized():
        abort(401)
    minutes = (request.get_json(silent=True) or {}).get("minutes", 120)
    write_state(time.time() + 60 * int(minutes))
    return {"open": True}


@app.route("/api/close", methods=["POST"])
def api_close():
    if not authorized():
        abort(401)
    write_state(None)
    return {"open": False}
