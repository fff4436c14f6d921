"""Allow-list, per-source token bucket and the once-a-minute counters line."""

from __future__ import annotations

from vac.core.querygate import QueryCounters, RateLimiter, SourcePolicy


def test_policy_addresses_networks_loopback_and_mapped_ipv4():
    policy = SourcePolicy(["10.0.0.1", "2001:db8::7"], ["192.0.2.0/24", "2001:db8:1::/48"])
    for allowed in ("10.0.0.1", "127.0.0.1", "::1", "192.0.2.200", "::ffff:192.0.2.9",
                    "2001:db8::7", "2001:db8:1:2::3", "::ffff:10.0.0.1"):
        assert policy.allows(allowed), allowed
    for refused in ("10.0.0.2", "127.0.0.2", "198.51.100.1", "2001:db8::8", "garbage", ""):
        assert not policy.allows(refused), refused
    assert not SourcePolicy(loopback=False).allows("127.0.0.1")


def test_token_bucket_burst_then_rate_and_loopback_exempt():
    limiter = RateLimiter(rate=10.0, burst=5.0)
    assert [limiter.take("10.0.0.1", 100.0) for _ in range(6)] == [True] * 5 + [False]
    assert limiter.take("10.0.0.2", 100.0)                   # buckets are per source
    assert not limiter.take("10.0.0.1", 100.05)              # half a token
    assert limiter.take("10.0.0.1", 100.15)                  # 1.5 tokens refilled
    assert all(limiter.take("127.0.0.1", 100.0) for _ in range(1000))


def test_token_buckets_stay_bounded():
    limiter = RateLimiter(rate=1.0, burst=2.0, max_sources=100)
    for i in range(1000):
        limiter.take(f"10.0.{i // 250}.{i % 250}", float(i) * 0.001)
    assert len(limiter) <= 100


def test_counters_period_summary():
    counters = QueryCounters()
    assert counters.period_summary(60) is None
    counters.received += 4
    counters.answer("machines_query", "10.0.0.1", 64, 39000)
    counters.answer("factory_query", "10.0.0.2", 1, 700)
    counters.refuse("source", "198.51.100.7")
    counters.refuse("malformed", "10.0.0.1")
    line = counters.period_summary(60)
    assert line == ("VacQuery in the last 60 s: 4 datagrams; answered 2 (factory_query 1, "
                    "machines_query 1) with 65 replies, 39700 bytes; refused 2 (source 1, "
                    "malformed 1); answered sources 10.0.0.1=1 10.0.0.2=1; refused sources "
                    "10.0.0.1=1 198.51.100.7=1")
    assert counters.period_summary(60) is None               # a new period
    assert counters.answered == 2 and counters.malformed == 1 and counters.wrong_space == 0
