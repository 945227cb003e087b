//! API keys (`[api]`) and the bearer-token check in front of `/api/v1/*`.
//!
//! Keys come from `api.key` (one key; `APP__API__KEY` in the environment)
//! and from `api.key_file` (one key per line, the way a Kubernetes Secret is
//! mounted). Both are secrets: they never appear in logs or in
//! `--print-config`. A request without `Authorization: Bearer <key>`, or
//! with a key that is not configured, gets 401 JSON. Keys are compared in
//! constant time.

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::middleware::Next;
use actix_web::web;
use orderly::{
    config::FromConfig, config::Secret, config::Validate, config::Validation, BoxError, Component, StartContext,
};
use orderly_components::http::ApiError;
use serde::Deserialize;

/// `[api]`.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// One API key (`APP__API__KEY`).
    pub key: Secret<String>,
    /// A file with one API key per line (blank lines and `#` comments skipped).
    pub key_file: String,
}

/// The shortest key accepted: a guessable key is no key.
const MIN_KEY_CHARS: usize = 16;

impl Validate for ApiConfig {
    fn validate(&self, v: &mut Validation) {
        let key = self.key.expose();
        if key.is_empty() && self.key_file.is_empty() {
            v.error("key", "an API key is required: set APP__API__KEY, api.key or api.key_file");
        }
        v.check(
            key.is_empty() || (key.len() >= MIN_KEY_CHARS && key.bytes().all(|b| b.is_ascii_graphic())),
            "key",
            format!("must be at least {MIN_KEY_CHARS} visible ASCII characters"),
        );
    }
}

/// The configured API keys.
pub struct ApiKeys {
    config: ApiConfig,
    /// The keys of the current run (read again by every start).
    keys: parking_lot::RwLock<Option<Arc<[Secret<String>]>>>,
}

impl ApiKeys {
    /// Keys as configured; the key file is read in `start`.
    pub fn new(config: ApiConfig) -> Self {
        Self { config, keys: parking_lot::RwLock::new(None) }
    }

    /// The bearer check for a scope: `scope.wrap(from_fn(require_bearer))`
    /// with this as app data.
    pub fn authenticator(&self) -> Result<Authenticator, BoxError> {
        let keys = self.keys.read().clone().ok_or("the api component has not started")?;
        Ok(Authenticator { keys })
    }
}

fn read_key_file(path: &str) -> Result<Vec<Secret<String>>, BoxError> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("reading api.key_file `{path}`: {e}"))?;
    let keys: Vec<_> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| Secret::new(l.to_owned()))
        .collect();
    if let Some(short) = keys.iter().position(|k| k.expose().len() < MIN_KEY_CHARS) {
        return Err(format!("api.key_file `{path}`: key on line {} is shorter than {MIN_KEY_CHARS}", short + 1).into());
    }
    Ok(keys)
}

#[orderly::component]
impl Component for ApiKeys {
    fn name(&self) -> &str {
        <Self as FromConfig>::section()
    }

    /// Each start reads the keys again; a reload of `[api]` restarts it
    /// with the orders, which take the new keys.
    fn restartable(&self) -> bool {
        true
    }

    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        let mut keys = Vec::new();
        if !self.config.key.expose().is_empty() {
            keys.push(self.config.key.clone());
        }
        if !self.config.key_file.is_empty() {
            keys.extend(read_key_file(&self.config.key_file)?);
        }
        if keys.is_empty() {
            return Err(orderly::Permanent::new("no API keys configured (api.key_file is empty)").into());
        }
        slog::info!(ctx.logger(), "api keys loaded"; "keys" => keys.len());
        *self.keys.write() = Some(keys.into());
        Ok(())
    }
}

orderly::register!(ApiKeys: ApiConfig => ApiKeys::new, section = "api");

/// What the bearer check needs: the keys.
pub struct Authenticator {
    keys: Arc<[Secret<String>]>,
}

/// Equal without an early exit, so response times do not reveal how much
/// of a key was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Authenticator {
    /// Whether an `Authorization` header value carries a configured key.
    pub fn admits(&self, authorization: Option<&[u8]>) -> bool {
        let Some(token) = authorization.and_then(|v| v.strip_prefix(b"Bearer ")) else { return false };
        // Every key is compared, so the time does not depend on which matched.
        self.keys.iter().fold(false, |found, key| found | constant_time_eq(key.expose().as_bytes(), token))
    }
}

fn unauthorized() -> actix_web::Error {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "send Authorization: Bearer <api key>").into()
}

/// Middleware: lets a request through only with a configured bearer key.
pub async fn require_bearer(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let auth =
        req.app_data::<web::Data<Authenticator>>().cloned().ok_or_else(|| ApiError::internal("no authenticator"))?;
    if !auth.admits(req.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes())) {
        return Err(unauthorized());
    }
    next.call(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authenticator(keys: &[&str]) -> Authenticator {
        Authenticator { keys: keys.iter().map(|k| Secret::new(k.to_string())).collect() }
    }

    #[test]
    fn admits_only_configured_bearer_keys() {
        let auth = authenticator(&["first-key-0123456789", "second-key-0123456789"]);
        assert!(auth.admits(Some(b"Bearer second-key-0123456789")));
        assert!(!auth.admits(Some(b"Bearer second-key-012345678")));
        assert!(!auth.admits(Some(b"bearer second-key-0123456789")));
        assert!(!auth.admits(Some(b"Basic second-key-0123456789")));
        assert!(!auth.admits(Some(b"Bearer ")));
        assert!(!auth.admits(None));
    }

    #[test]
    fn a_key_is_required_and_must_be_long_enough() {
        let mut v = Validation::for_section("api");
        ApiConfig::default().validate(&mut v);
        assert_eq!(v.issues()[0].key, "api.key");
        let mut v = Validation::for_section("api");
        ApiConfig { key: Secret::new("short".into()), ..Default::default() }.validate(&mut v);
        assert!(v.issues()[0].message.contains("at least 16"));
    }

    #[test]
    fn key_files_skip_comments_and_blank_lines() {
        let path = std::env::temp_dir().join(format!("example-app-keys-{}", std::process::id()));
        std::fs::write(&path, "# ops team\nkey-one-0123456789abc\n\n  key-two-0123456789abc  \n").unwrap();
        let keys = read_key_file(path.to_str().unwrap()).unwrap();
        std::fs::remove_file(&path).unwrap();
        let exposed: Vec<_> = keys.iter().map(|k| k.expose().as_str()).collect();
        assert_eq!(exposed, ["key-one-0123456789abc", "key-two-0123456789abc"]);
    }
}
