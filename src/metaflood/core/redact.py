"""Keeping credentials out of what is printed, logged and written.

Signed URLs (Planetary Computer SAS tokens, S3 presigned URLs) carry the credential in
the query string; `redact_url` removes it before a URL is logged or written, and
`redact_text` does so inside any message. Apart from `metaflood.acquire.stage` (whose import
is heavy) so that every command's logging can use it.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from metaflood.core.errors import ConfigError

# Query parameters that carry a credential: Azure SAS, AWS and Google presigned URLs,
# generic API keys and tokens.
SECRET_PARAMS = {
    "sig",
    "signature",
    "se",
    "st",
    "sp",
    "sv",
    "sr",
    "spr",
    "sip",
    "ss",
    "srt",
    "skoid",
    "sktid",
    "skt",
    "ske",
    "sks",
    "skv",
    "sdd",
    "ses",
    "token",
    "access_token",
    "api_key",
    "apikey",
    "key",
    "subscription-key",
    "subscription_key",
}
SECRET_PREFIXES = ("x-amz-", "x-goog-")
REMOTE_SCHEMES = ("http", "https", "s3")
URL_PATTERN = re.compile(r"(?:https?|s3)://[^\s'\"<>)]+")
# What is left of a URL in other libraries' messages (urllib3 logs the path and query
# alone): a query parameter, and user:password before a host.
QUERY_PARAM_PATTERN = re.compile(r"(?<=[?&])([^=&?\s'\"<>()]+)=[^&\s'\"<>)]*")
USERINFO_PATTERN = re.compile(r"(?<=//)[^/@\s'\"<>()]+@")
REDACTED = "[redacted]"


def _is_secret(name: str) -> bool:
    name = name.lower()
    return name in SECRET_PARAMS or name.startswith(SECRET_PREFIXES)


def redact_url(url: str) -> str:
    """The URL without user:password and without credential query parameters."""
    parts = urlsplit(url)
    if parts.scheme not in REMOTE_SCHEMES and "@" not in parts.netloc:
        return url
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_secret(k)]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query), parts.fragment))


def redact_text(text: str) -> str:
    """Every URL inside a message (a GDAL or HTTP error, say) with its credentials removed,
    and credentials left in pieces of URLs (a path with its query, user:password@)."""
    text = URL_PATTERN.sub(lambda m: redact_url(m.group(0)), str(text))
    text = USERINFO_PATTERN.sub("", text)
    return QUERY_PARAM_PATTERN.sub(
        lambda m: f"{m.group(1)}={REDACTED}" if _is_secret(m.group(1)) else m.group(0), text
    )


def url_credentials(url: str) -> list[str]:
    """The credentials a URL carries, by what they are (never their values)."""
    parts = urlsplit(url)
    found = ["a user and password"] if "@" in parts.netloc else []
    names = [k for k, _ in parse_qsl(parts.query, keep_blank_values=True) if _is_secret(k)]
    if names:
        found.append(f"query parameters {', '.join(sorted(set(names)))}")
    return found


PROVIDER_CREDENTIALS = (
    "put the login in ~/.netrc, or a token in an environment variable named by auth.bearer_env"
)


def refuse_url_credentials(url: str, key: str, instead: str = PROVIDER_CREDENTIALS) -> None:
    """Credentials written into a configured URL would travel in each job's command line,
    which Snakemake prints when a job fails and keeps under .snakemake/: refuse them at
    start-up and say where they belong (`instead`)."""
    found = url_credentials(url)
    if found:
        raise ConfigError(
            f"{key}: the URL carries credentials ({' and '.join(found)}), which the "
            f"configuration may not hold (Snakemake prints and keeps each job's command): "
            f"give {redact_url(url)} and {instead}"
        )


class RedactingFilter(logging.Filter):
    """A log handler's filter: every record's text with credentials removed (a library's
    message about a signed URL, say), before any handler writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact_text(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True
