"""What the trail keeps of personal text: email-shaped usernames masked, search terms hashed.

docs/audit.md promises the trail never holds an email and no free text. Usernames are usually
handles, but Django lets a username be an email address; such a name is masked wherever the
trail names a user. Staff type names and emails into the admin's search box: the trail keeps
only a keyed hash of the term (HMAC-SHA256 with AUDIT_SEARCH_HASH_KEY) and its length, so an
investigator who knows a term can prove it was searched for, and nobody can read it back.
"""

import hashlib
import hmac
import re

from django.conf import settings
from django.http import QueryDict
from django.utils.crypto import salted_hmac

EMAIL_SHAPED = re.compile(r"^[^@\s]+@[^@\s]+$")
SEARCH_PARAMETER = "q"  # the admin's search box


def username_for_trail(username: str) -> str:
    """The username, with an email-shaped one masked: "alice@example.com" -> "a***@example.com"."""
    if not EMAIL_SHAPED.match(username or ""):
        return username
    local, domain = username.split("@", 1)
    return f"{local[:1]}***@{domain}"


def _search_key() -> bytes:
    key: str = settings.AUDIT_SEARCH_HASH_KEY
    if key:
        return key.encode()
    # Unset: a key derived from SECRET_KEY (rotating SECRET_KEY then changes the digests).
    derived: bytes = salted_hmac("tollgate.audit.search", "key").digest()
    return derived


def search_digest(term: str) -> str:
    """HMAC-SHA256 of a search term, hex (compare with `python manage.py shell` and the key)."""
    return hmac.new(_search_key(), term.encode(), hashlib.sha256).hexdigest()


def query_for_trail(query: QueryDict) -> tuple[str, dict[str, str | int]]:
    """A request's query string without the search term, and meta with its digest and length."""
    kept = query.copy()
    term = kept.pop(SEARCH_PARAMETER, [""])[-1].strip()
    if not term:
        return kept.urlencode(), {}
    return kept.urlencode(), {"search_hmac": search_digest(term), "search_length": len(term)}
