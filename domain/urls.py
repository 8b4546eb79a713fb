"""LoRA URL rules: base + key, path-style to virtual-hosted, and never downgrading acceleration."""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit, urlunsplit

# `https://s3-accelerate.amazonaws.com/<bucket>/<key>` or `https://s3.<region>.amazonaws.com/<bucket>/…`
_PATH_STYLE_HOST = re.compile(
    r"(?P<service>s3(?:-accelerate)?(?:[.-](?!amazonaws)[a-z0-9-]+)?)\.amazonaws\.com"
)


def lora_url(base: str, key: str) -> str:
    """`loraUrl` = base + key (the key percent-encoded where a URL needs it, `/` kept)."""
    return base + quote(key, safe="/~!$&'()*+,;=:@")


def is_accelerated(url: str) -> bool:
    """S3 Transfer Acceleration hosts: `<bucket>.s3-accelerate[.dualstack].amazonaws.com`."""
    return "s3-accelerate" in urlsplit(url).netloc.lower().split(".")


def virtual_hosted(url: str) -> str:
    """Turn a path-style AWS S3 URL into its virtual-hosted form; other URLs are returned as is.

    `https://s3-accelerate.amazonaws.com/bucket/k` -> `https://bucket.s3-accelerate.amazonaws.com/k`
    """
    parts = urlsplit(url)
    if not _PATH_STYLE_HOST.fullmatch(parts.netloc):
        return url
    bucket, _, key = parts.path.lstrip("/").partition("/")
    if not bucket or not key:
        return url
    return urlunsplit((parts.scheme, f"{bucket}.{parts.netloc}", "/" + key, parts.query, ""))


def should_replace(current: str | None, offered: str) -> bool:
    """Whether an offered URL for the same file replaces the current one.

    An accelerated URL is never replaced by a plain one; a plain one gives way to an accelerated one.
    """
    if current is None:
        return True
    if current == offered:
        return False
    return not is_accelerated(current) and is_accelerated(offered)
