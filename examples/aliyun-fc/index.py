# -*- coding: utf-8 -*-
"""BucketBridge sender for Alibaba Cloud Function Compute (Python 3, OSS trigger).

Forwards the OSS event it is invoked with -- the exact bytes, ``{"events": [...]}`` --
to BucketBridge's ``POST /sync``, signed with SDK-HMAC-SHA256. BucketBridge routes the
keys to tasks by bucket name and replicates each object; this function only delivers.

Standard library only (hmac, hashlib, urllib.request, json, datetime): the deployment
is this one file, with nothing to pip-install into the ZIP.

Environment variables:
  BB_SYNC_URL         e.g. https://bucketbridge.example.com/sync          (required)
  BB_ACCESS_KEY       the sender's access key id                          (required)
  BB_SECRET           the sender's secret                                 (required)
  BB_TASK             route every key to this task id (adds ?task=ID)     (optional)
  BB_TIMEOUT_SECONDS  give up on one request after this long, default 10  (optional;
                      keep it below the function's timeout)

Failure contract: a non-2xx answer or a network error RAISES. OSS triggers invoke the
function asynchronously, and Function Compute retries a failed asynchronous invocation
and then hands it to the failure destination configured for the function, instead of
dropping it. Retrying is safe: BucketBridge treats events as hints and collapses
duplicates.
"""
import datetime
import hashlib
import hmac
import json
import logging
import os
import urllib.error
import urllib.parse
import urllib.request

ALGORITHM = "SDK-HMAC-SHA256"
SIGNED_HEADERS = "content-type;host;x-sdk-date"
CONTENT_TYPE = "application/json"
DEFAULT_TIMEOUT_SECONDS = 10.0

logger = logging.getLogger()


# ---------------------------------------------------------------------------
# SDK-HMAC-SHA256 signer: a dependency-free copy of BucketBridge's
# src/auth/sdk-hmac.ts (restricted to what this sender signs).
# test/examples.test.ts checks that both produce the same signature.


def _encode(raw):
    """Canonical form of one path segment / query key / value.

    Percent-decoded leniently (a '%' without two hex digits stays literal, '+' stays '+'),
    then every byte outside A-Za-z0-9-_.~ re-encoded as %XX, upper case.
    """
    return urllib.parse.quote_from_bytes(urllib.parse.unquote_to_bytes(raw), safe="~")


def canonical_uri(path):
    """The path split on '/', each segment decoded and re-encoded, always ending in '/'."""
    joined = "/".join(_encode(segment) for segment in path.split("/"))
    return joined if joined.endswith("/") else joined + "/"


def canonical_query(query):
    """Raw query (no '?'): pairs sorted by decoded key then value bytes; empty keys dropped."""
    pairs = []
    for part in query.split("&"):
        if part == "":
            continue
        key, _, value = part.partition("=")
        key_bytes = urllib.parse.unquote_to_bytes(key)
        if key_bytes == b"":
            continue
        pairs.append((key_bytes, urllib.parse.unquote_to_bytes(value)))
    pairs.sort()
    return "&".join(
        urllib.parse.quote_from_bytes(k, safe="~") + "=" + urllib.parse.quote_from_bytes(v, safe="~")
        for k, v in pairs
    )


def sdk_date(when):
    """``YYYYMMDDTHHMMSSZ`` in UTC."""
    return when.astimezone(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _host(parts):
    """Host header value: the URL's host[:port] as written, without any user:password@."""
    return parts.netloc.rpartition("@")[2]


def sign_request(method, url, body, access_key, secret, when=None):
    """Headers that sign a request: Authorization, X-Sdk-Date, Host, Content-Type.

    ``url`` must already be percent-encoded (it goes on the wire as is);
    ``body`` is the exact bytes that will be sent.
    """
    if isinstance(body, str):
        body = body.encode("utf-8")
    if when is None:
        when = datetime.datetime.now(datetime.timezone.utc)
    parts = urllib.parse.urlsplit(url)
    host = _host(parts)
    timestamp = sdk_date(when)
    canonical_headers = "content-type:%s\nhost:%s\nx-sdk-date:%s\n" % (CONTENT_TYPE, host, timestamp)
    canonical_request = "\n".join([
        method.upper(),
        canonical_uri(parts.path or "/"),
        canonical_query(parts.query),
        canonical_headers,
        SIGNED_HEADERS,
        hashlib.sha256(body).hexdigest(),
    ])
    string_to_sign = "%s\n%s\n%s" % (
        ALGORITHM, timestamp, hashlib.sha256(canonical_request.encode("utf-8")).hexdigest())
    signature = hmac.new(secret.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    return {
        "Authorization": "%s Access=%s, SignedHeaders=%s, Signature=%s" % (
            ALGORITHM, access_key, SIGNED_HEADERS, signature),
        "X-Sdk-Date": timestamp,
        "Host": host,
        "Content-Type": CONTENT_TYPE,
    }


# ---------------------------------------------------------------------------
# Handler


def _required_env(name):
    value = os.environ.get(name, "")
    if value == "":
        raise RuntimeError("environment variable %s is not set" % name)
    return value


def _sync_url():
    """BB_SYNC_URL with ``task=ID`` appended to any query it already has."""
    url = _required_env("BB_SYNC_URL")
    task = os.environ.get("BB_TASK", "")
    if task:
        url += ("&" if "?" in url else "?") + "task=" + urllib.parse.quote(task, safe="")
    return url


def _timeout():
    try:
        seconds = float(os.environ.get("BB_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS))
    except ValueError:
        return DEFAULT_TIMEOUT_SECONDS
    return seconds if seconds > 0 else DEFAULT_TIMEOUT_SECONDS


def _summary(body):
    """'eventName oss://bucket/key' for each event, for the log; never fails."""
    try:
        events = json.loads(body.decode("utf-8")).get("events", [])
        return ["%s oss://%s/%s" % (e.get("eventName"), e["oss"]["bucket"]["name"], e["oss"]["object"]["key"])
                for e in events]
    except Exception:  # the log line must not be what fails the invocation
        return []


def _error_code(text):
    try:
        error = json.loads(text).get("error", {})
        return error.get("code", "no error code"), error.get("message", "")
    except Exception:
        return "no error code", text[:200]


def handler(event, context):
    """Function Compute entry point. ``event`` is the trigger payload as bytes (or str)."""
    body = event if isinstance(event, (bytes, bytearray)) else str(event).encode("utf-8")
    body = bytes(body)
    url = _sync_url()
    headers = sign_request("POST", url, body, _required_env("BB_ACCESS_KEY"), _required_env("BB_SECRET"))
    objects = _summary(body)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=_timeout()) as response:
            status = response.status
            text = response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        text = err.read().decode("utf-8", "replace")
        code, message = _error_code(text)
        # Names the objects, never the secret or the signature.
        raise RuntimeError("BucketBridge answered HTTP %d (%s): %s -- objects: %s" % (
            err.code, code, message, ", ".join(objects))) from None
    if not 200 <= status < 300:
        # urllib raises for >= 400 only; anything else unexpected is a failure too.
        raise RuntimeError("BucketBridge answered HTTP %d -- objects: %s" % (status, ", ".join(objects)))
    try:
        answer = json.loads(text)
    except ValueError:
        answer = {}
    # 202: queued now. 200 with replayed=true: this exact signed request was already
    # accepted (a retried delivery), so it is queued too -- success either way.
    logger.info(json.dumps({
        "status": status,
        "replayed": answer.get("replayed") is True,
        "accepted": answer.get("accepted"),
        "duplicates": answer.get("duplicates"),
        "ignored": answer.get("ignored"),
        "objects": objects,
    }))
    return json.dumps(answer)
