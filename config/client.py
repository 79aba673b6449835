"""The client's address: the one function every part of Tollgate asks (axes, audit, deliveries,
logs), so a request is never attributed to two different addresses.

Behind a load balancer REMOTE_ADDR is the balancer, shared by every client. X-Forwarded-For
names the client, but anyone can send that header: it is believed only when the request came
from one of TRUSTED_PROXIES. python-ipware (the engine of django-ipware) walks the chain: the
hops the trusted proxies appended are matched against TRUSTED_PROXIES from the right, and the
address just before them is the client. Whatever a client wrote further left is ignored.
"""

import ipaddress

from django.conf import settings
from django.http import HttpRequest
from python_ipware import IpWare

_FORWARDED_FOR = "HTTP_X_FORWARDED_FOR"
_resolvers: dict[tuple[str, ...], IpWare] = {}


def trusted_proxies_parse(value: list[str]) -> list[str]:
    """Validate TRUSTED_PROXIES entries (addresses or CIDR networks); returns them normalised.

    Raises ValueError naming the first entry that is neither: python-ipware would otherwise
    take it as a text prefix ("10.1" trusting 10.1.x.x), which nobody means by accident.
    """
    networks = []
    for entry in (item.strip() for item in value):
        try:
            networks.append(str(ipaddress.ip_network(entry, strict=False)))
        except ValueError:
            message = f"TRUSTED_PROXIES entry {entry!r} is not an address or a CIDR"
            raise ValueError(message) from None
    return networks


def _resolver(proxies: tuple[str, ...]) -> IpWare:
    resolver = _resolvers.get(proxies)
    if resolver is None:
        resolver = IpWare(precedence=(_FORWARDED_FOR,), proxy_list=list(proxies))
        _resolvers[proxies] = resolver
    return resolver


def _address(value: object) -> str | None:
    try:
        return str(ipaddress.ip_address(str(value).strip()))
    except ValueError:
        return None


def client_ip(request: HttpRequest) -> str | None:
    """The address of the client that sent `request`, or None when there is no valid one.

    Without TRUSTED_PROXIES it is REMOTE_ADDR and X-Forwarded-For is ignored. With them, the
    peer (REMOTE_ADDR) is the last hop of the chain: a peer that is not the last trusted proxy
    makes the chain invalid and REMOTE_ADDR is the answer, so a client that reaches Tollgate
    directly cannot choose its address. Also django-axes' AXES_CLIENT_IP_CALLABLE.
    """
    peer = _address(request.META.get("REMOTE_ADDR", ""))
    proxies = tuple(settings.TRUSTED_PROXIES)
    if peer is None or not proxies:
        return peer
    forwarded = request.META.get(_FORWARDED_FOR, "")
    chain = f"{forwarded}, {peer}" if isinstance(forwarded, str) and forwarded.strip() else peer
    # Not strict: garbage a client put to the left is skipped, never a reason to fall back to
    # the proxy's own (shared) address.
    found, trusted = _resolver(proxies).get_client_ip({_FORWARDED_FOR: chain}, strict=False)
    if found is None or not trusted:
        return peer
    return str(found)
