"""The tenant settings of a lesson's pages: frame origins, and students' marks and pointers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from auth.tenants import MAX_FRAME_ORIGINS, Tenant, TenantConfigError, load_tenants
from auth.urls import page_origin

SECRET = "tenant-secret-" + "q" * 40
API_KEY = "api-key-" + "k" * 40


def tenant_with(**settings: Any) -> Tenant:
    registry = load_tenants(json.dumps({"acme": {"secrets": [SECRET], "api_key": API_KEY,
                                                 **settings}}))
    tenant = registry.get("acme")
    assert tenant is not None
    return tenant


def refusal(**settings: Any) -> str:
    with pytest.raises(TenantConfigError) as caught:
        tenant_with(**settings)
    return str(caught.value)


def test_defaults_show_no_frames_allow_marks_and_keep_student_pointers_off() -> None:
    tenant = tenant_with()
    assert tenant.frame_origins == ()
    assert tenant.student_marks is True and tenant.student_pointers is False


def test_frame_origins_are_normalised_and_kept_once_in_order() -> None:
    tenant = tenant_with(frame_origins=["https://Content.Example.com", "https://b.example:8443/",
                                        "http://127.0.0.1:9000", "https://content.example.com:443",
                                        "http://localhost"])
    assert tenant.frame_origins == ("https://content.example.com", "https://b.example:8443",
                                    "http://127.0.0.1:9000", "http://localhost")


@pytest.mark.parametrize("origin", [
    "http://content.example.com",  # plain http off the loopback host
    "https://content.example.com/lessons",  # a path: not an origin
    "https://content.example.com?x=1",
    "https://user:pw@content.example.com",
    "ftp://content.example.com",
    "https://",
    "https://a;b.example",  # would break the CSP header it goes into
    "https://[::1]",
    "content.example.com",
])
def test_anything_but_an_https_or_loopback_origin_is_refused(origin: str) -> None:
    message = refusal(frame_origins=[origin])
    assert "frame_origins" in message
    assert "example" not in message  # the message names the rule, never the value


def test_frame_origins_are_bounded() -> None:
    origins = [f"https://c{n}.example" for n in range(MAX_FRAME_ORIGINS + 1)]
    assert "frame_origins" in refusal(frame_origins=origins)
    assert len(tenant_with(frame_origins=origins[:-1]).frame_origins) == MAX_FRAME_ORIGINS


@pytest.mark.parametrize("name", ["student_marks", "student_pointers"])
def test_student_switches_take_booleans_only(name: str) -> None:
    assert getattr(tenant_with(**{name: False}), name) is False
    assert getattr(tenant_with(**{name: True}), name) is True
    assert name in refusal(**{name: "yes"})


def test_page_origin_of_a_screen_url() -> None:
    assert page_origin("https://Content.example/lesson/1?x=2#top") == "https://content.example"
    assert page_origin("http://localhost:8080/a") == "http://localhost:8080"
    with pytest.raises(ValueError, match="url must be https"):
        page_origin("http://10.0.0.1/a")
