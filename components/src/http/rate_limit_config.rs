//! `[http.rate_limit]`: per-client rate limits by route group.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use orderly::{config::Validate, config::Validation};
use serde::{Deserialize, Serialize};

/// `[http.rate_limit]`. Off until a group is configured.
///
/// ```toml
/// [http.rate_limit]
/// trusted_proxies = ["10.0.0.0/8"]     # believe X-Forwarded-For only from these peers
///
/// [http.rate_limit.groups.api]
/// prefix = "/api/v1"                   # every path under it shares the limit
/// requests = 50                        # long-run rate: 50 requests …
/// per = "1s"                           # … per second, per client
/// burst = 100                          # and up to 100 at once
/// key = "bearer"                       # the bearer key when sent, else the client address
/// ```
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Clients remembered per group. Past it, the client closest to a full
    /// bucket is forgotten (it gets a fresh burst the next time), so memory
    /// stays bounded however many distinct clients arrive.
    pub max_clients: usize,
    /// Peers (addresses or CIDR ranges) whose `X-Forwarded-For` is believed.
    /// Empty (the default): the header is ignored and the client is the
    /// connection's peer.
    pub trusted_proxies: Vec<String>,
    /// Route groups, by name (the name appears in the `RateLimit` headers).
    pub groups: BTreeMap<String, RateLimitGroup>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self { max_clients: 100_000, trusted_proxies: Vec::new(), groups: BTreeMap::new() }
    }
}

/// One route group's limit (`[http.rate_limit.groups.<name>]`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateLimitGroup {
    /// The path prefix, matched on whole segments: `/api/v1` covers
    /// `/api/v1` and `/api/v1/orders`, not `/api/v10`. The longest
    /// matching prefix wins.
    pub prefix: String,
    /// Requests a client may make per `per`, in the long run.
    pub requests: u32,
    /// The period `requests` is counted over.
    #[serde(default = "one_second", with = "humantime_serde")]
    pub per: Duration,
    /// Requests a client may make at once (the bucket's size); defaults to `requests`.
    #[serde(default)]
    pub burst: Option<u32>,
    /// What identifies a client.
    #[serde(default)]
    pub key: ClientKeyKind,
}

fn one_second() -> Duration {
    Duration::from_secs(1)
}

impl RateLimitGroup {
    /// The bucket's size.
    pub fn burst_size(&self) -> u32 {
        self.burst.unwrap_or(self.requests)
    }

    /// The time one request's worth of the bucket takes to come back.
    pub fn replenish_interval(&self) -> Duration {
        self.per / self.requests.max(1)
    }
}

/// What identifies a client for a group's limit.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ClientKeyKind {
    /// The client's address (an IPv6 client by its /64 network, which one
    /// host usually holds whole).
    #[default]
    Client,
    /// The `Authorization: Bearer` key when the request carries one, else
    /// the client's address. The key is not checked here: a made-up key
    /// gets its own bucket and then the route's 401.
    Bearer,
}

/// Parses `10.0.0.0/8` or a bare address (one host).
pub(crate) fn parse_network(text: &str) -> Option<IpNet> {
    text.parse::<IpNet>().ok().or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))
}

impl Validate for RateLimitConfig {
    fn validate(&self, v: &mut Validation) {
        v.check(self.max_clients >= 64, "rate_limit.max_clients", "must be at least 64");
        for proxy in &self.trusted_proxies {
            v.check(
                parse_network(proxy).is_some(),
                "rate_limit.trusted_proxies",
                format!("`{proxy}` is neither an address nor a CIDR range (for example 10.0.0.0/8)"),
            );
        }
        for (name, group) in &self.groups {
            let key = |field: &str| format!("rate_limit.groups.{name}.{field}");
            v.check(
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
                "rate_limit.groups",
                format!("group name `{name}`: use letters, digits, `_` and `-` (it is sent in the RateLimit headers)"),
            );
            v.check(group.prefix.starts_with('/'), &key("prefix"), format!("`{}` must start with `/`", group.prefix));
            v.check(group.requests > 0, &key("requests"), "must be greater than 0");
            v.check(!group.per.is_zero(), &key("per"), "must be greater than 0");
            v.check(group.burst != Some(0), &key("burst"), "must be greater than 0");
            v.check(
                group.requests == 0 || !group.replenish_interval().is_zero(),
                &key("requests"),
                format!("{} per {:?} is finer than a nanosecond", group.requests, group.per),
            );
        }
        let mut prefixes: Vec<&str> = self.groups.values().map(|g| g.prefix.trim_end_matches('/')).collect();
        prefixes.sort_unstable();
        for pair in prefixes.windows(2) {
            v.check(pair[0] != pair[1], "rate_limit.groups", format!("two groups have the prefix `{}`", pair[0]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(prefix: &str, requests: u32) -> RateLimitGroup {
        RateLimitGroup { prefix: prefix.into(), requests, per: one_second(), burst: None, key: ClientKeyKind::Client }
    }

    #[test]
    fn off_by_default_and_valid() {
        let config = RateLimitConfig::default();
        assert!(config.groups.is_empty());
        let mut v = Validation::default();
        config.validate(&mut v);
        assert!(v.issues().is_empty(), "{v:?}");
    }

    #[test]
    fn every_bad_key_is_named() {
        let mut config =
            RateLimitConfig { max_clients: 1, trusted_proxies: vec!["proxy.local".into()], ..Default::default() };
        config.groups.insert("a".into(), group("api", 0));
        config.groups.insert("b".into(), RateLimitGroup { burst: Some(0), ..group("/x", 1) });
        config.groups.insert("c".into(), group("/x/", 1));
        let mut v = Validation::default();
        config.validate(&mut v);
        let text = format!("{v:?}");
        for key in [
            "max_clients",
            "proxy.local",
            "groups.a.prefix",
            "groups.a.requests",
            "groups.b.burst",
            "two groups have the prefix `/x`",
        ] {
            assert!(text.contains(key), "{key} missing from {text}");
        }
    }

    #[test]
    fn toml_reads_as_documented() {
        let config: RateLimitConfig = toml::from_str(
            "trusted_proxies = [\"10.0.0.0/8\", \"127.0.0.1\"]\n\
             [groups.api]\nprefix = \"/api/v1\"\nrequests = 10\nper = \"1m\"\nkey = \"bearer\"\n",
        )
        .unwrap();
        let api = &config.groups["api"];
        assert_eq!((api.burst_size(), api.replenish_interval()), (10, Duration::from_secs(6)));
        assert_eq!(api.key, ClientKeyKind::Bearer);
        assert!(config.trusted_proxies.iter().all(|p| parse_network(p).is_some()));
    }
}
