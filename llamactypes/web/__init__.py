"""The chat page served at `/` to browsers: static HTML, JS and CSS shipped as package data.

No build step and no external URL: `marked` (Markdown) and `DOMPurify` (sanitizing its HTML)
are vendored here with their licenses (LICENSE.marked: MIT; LICENSE.dompurify: Apache-2.0
or MPL-2.0). The page talks to the same server's `/v1/chat/completions` and `/v1/models`.
Layer 1: reads its own files, imports nothing of ours.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

__all__ = ["ASSETS", "asset", "wants_page", "CONTENT_SECURITY_POLICY"]

# file -> content type; nothing else is served from this folder
ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "marked.umd.js": "text/javascript; charset=utf-8",
    "purify.min.js": "text/javascript; charset=utf-8",
}

# Only our own files run; the model's output cannot load scripts, frames or images from elsewhere
# (an image URL in a reply would otherwise leak the conversation to its host).
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


@lru_cache(maxsize=None)
def asset(name: str) -> bytes:
    """The bytes of one page file; KeyError for a name not in ASSETS."""
    if name not in ASSETS:
        raise KeyError(name)
    return resources.files(__name__).joinpath(name).read_bytes()


def wants_page(accept: str) -> bool:
    """True when an Accept header asks for HTML before anything else (a browser navigating);
    `*/*` (curl), `application/json` and no header at all keep the JSON answer."""
    for item in accept.split(","):
        media = item.split(";")[0].strip().lower()
        if media:
            return media in ("text/html", "application/xhtml+xml")
    return False
