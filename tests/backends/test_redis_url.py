"""REDIS_URL names one Redis, a Sentinel-watched primary or a cluster; mistakes are refused."""

from __future__ import annotations

import pytest

from classroom.backends.broker import broker_from_url
from classroom.backends.data.redis import data_store_from_url
from classroom.backends.presence_factory import presence_from_url
from classroom.backends.redis_url import RedisTarget, parse_redis_url


def test_one_server_is_kept_whole() -> None:
    assert parse_redis_url("rediss://:pw@h:6380/2") == RedisTarget("single", True,
                                                                   "rediss://:pw@h:6380/2")


def test_sentinel_lists_the_sentinels_then_the_service_and_db() -> None:
    target = parse_redis_url("redis+sentinel://u:p%2Cw@S1:26379,[::1]:26380/classroom/3")
    assert target.topology == "sentinel" and not target.tls
    assert target.addresses == (("s1", 26379), ("::1", 26380))
    assert (target.service, target.db, target.username, target.password) == (
        "classroom", 3, "u", "p,w")


def test_cluster_lists_seed_nodes() -> None:
    target = parse_redis_url("rediss+cluster://:pw@a:7000,b:7001")
    assert target.topology == "cluster" and target.tls
    assert target.addresses == (("a", 7000), ("b", 7001)) and target.password == "pw"


@pytest.mark.parametrize(("url", "problem"), [
    ("redis+sentinel://a:1", "service-name"),
    ("redis+sentinel://a:1/svc/x", "number"),
    ("redis+cluster://a:1/2", "database 0"),
    ("redis+cluster://a,b:2", "host:port"),
    ("redis+cluster://a:1,,b:2", "empty"),
    ("redis+cluster://a:1,a:1", "twice"),
    ("mongodb://a:1", "scheme"),
])
def test_mistakes_are_named(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_redis_url(url)


def test_a_refusal_never_repeats_the_password() -> None:
    with pytest.raises(ValueError) as caught:
        parse_redis_url("redis+cluster://:hunter2@a:1/5")
    assert "hunter2" not in str(caught.value)


def test_the_retired_comma_list_is_refused_pointing_to_the_cluster() -> None:
    url = "redis://:pw@a:6379/0,redis://:pw@b:6379/0"
    for build in (broker_from_url, presence_from_url, data_store_from_url):
        with pytest.raises(ValueError, match=r"no longer supported.*redis\+cluster://") as caught:
            build(url)
        assert "pw" not in str(caught.value).replace("supported", "")
