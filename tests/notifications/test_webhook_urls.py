"""notifications.webhook_urls: which URLs a webhook may call (pure; a name's addresses come from a given resolver)."""

from __future__ import annotations

import pytest

from notifications.webhook_urls import WebhookUrlRefused, check_webhook_url, is_public, literal_address

PUBLIC = "93.184.215.14"  # a global unicast address (no connection is made here)


def resolver(*addresses: str):
    def resolve(host: str, port: int) -> list[str]:
        return list(addresses)

    return resolve


def refused(url: str, *, allowed=(), resolve=None) -> str:
    with pytest.raises(WebhookUrlRefused) as caught:
        check_webhook_url(url, allowed_hosts=allowed, resolve=resolve or resolver(PUBLIC))
    assert caught.value.details == {"field": "webhook_url"}
    return caught.value.code


def test_a_public_https_host_is_called_at_the_address_it_resolved_to() -> None:
    target = check_webhook_url(
        "https://hooks.example.org/services/T0/B0/x?y=1", allowed_hosts=[], resolve=resolver(PUBLIC)
    )
    assert (target.scheme, target.host, target.port, target.address, target.path) == (
        "https",
        "hooks.example.org",
        443,
        PUBLIC,
        "/services/T0/B0/x?y=1",
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://localhost.example/hook",  # a name resolving to loopback
        "https://10.1.2.3/hook",
        "https://172.16.0.1/hook",
        "https://192.168.1.1/hook",
        "https://169.254.169.254/latest/meta-data",  # the cloud metadata service
        "https://100.64.0.1/hook",  # shared address space (CGNAT)
        "https://0.0.0.0/hook",
        "https://224.0.0.1/hook",  # multicast
        "https://240.0.0.1/hook",  # reserved
        "https://[::1]/hook",
        "https://[fe80::1]/hook",
        "https://[fc00::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",  # IPv4-mapped loopback
        "https://[::ffff:7f00:1]/hook",  # the same, written in hex
        "https://[64:ff9b::a00:1]/hook",  # NAT64 of 10.0.0.1
        "https://[2002:a00:1::1]/hook",  # 6to4 of 10.0.0.1
        "https://2130706433/hook",  # 127.0.0.1 as one decimal number
        "https://0x7f000001/hook",  # ... as hex
        "https://0177.0.0.1/hook",  # ... with an octal part
        "https://127.1/hook",  # ... shortened
        "https://0x7f.1/hook",
    ],
)
def test_addresses_of_this_machine_and_its_networks_are_refused(url: str) -> None:
    private = resolver("127.0.0.1") if "localhost" in url else None
    assert refused(url, resolve=private) == "WEBHOOK_HOST_PRIVATE"


def test_a_name_is_refused_when_any_of_its_addresses_is_private() -> None:
    assert refused("https://rebind.example.org/h", resolve=resolver(PUBLIC, "10.0.0.5")) == "WEBHOOK_HOST_PRIVATE"
    assert refused("https://v6.example.org/h", resolve=resolver("::ffff:192.168.0.1")) == "WEBHOOK_HOST_PRIVATE"


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://hooks.example.org/h", "WEBHOOK_URL_NOT_HTTPS"),
        ("ftp://hooks.example.org/h", "WEBHOOK_URL_NOT_HTTPS"),
        ("file:///etc/passwd", "WEBHOOK_URL_INVALID"),
        ("https://user:pw@hooks.example.org/h", "WEBHOOK_URL_INVALID"),
        ("https:///nohost", "WEBHOOK_URL_INVALID"),
        ("https://hooks.example.org:99999/h", "WEBHOOK_URL_INVALID"),
        ("https://hooks.example.org/a b", "WEBHOOK_URL_INVALID"),
        ("not a url", "WEBHOOK_URL_INVALID"),
    ],
)
def test_malformed_and_plain_http_urls_are_refused(url: str, code: str) -> None:
    assert refused(url) == code


def test_a_host_that_does_not_resolve_is_refused() -> None:
    assert refused("https://nothing.invalid/h", resolve=resolver()) == "WEBHOOK_HOST_UNRESOLVED"


def test_an_allowed_host_may_be_private_and_http_only_when_allowed_so() -> None:
    target = check_webhook_url("https://127.0.0.1:8443/hook", allowed_hosts=[("127.0.0.1", False)])
    assert (target.address, target.port) == ("127.0.0.1", 8443)
    assert refused("http://127.0.0.1:8080/hook", allowed=[("127.0.0.1", False)]) == "WEBHOOK_URL_NOT_HTTPS"
    target = check_webhook_url("http://127.0.0.1:8080/hook", allowed_hosts=[("127.0.0.1", True)])
    assert (target.scheme, target.port, target.path) == ("http", 8080, "/hook")
    # another loopback spelling is another host: not allowed
    assert refused("https://127.1/hook", allowed=[("127.0.0.1", False)]) == "WEBHOOK_HOST_PRIVATE"


def test_literal_addresses_are_read_as_a_resolver_reads_them() -> None:
    assert str(literal_address("2130706433")) == "127.0.0.1"
    assert str(literal_address("0x7f.1")) == "127.0.0.1"
    assert literal_address("hooks.example.org") is None
    assert is_public(literal_address(PUBLIC)) is True
    assert is_public(literal_address("::ffff:93.184.215.14")) is False  # mapped forms are never called
