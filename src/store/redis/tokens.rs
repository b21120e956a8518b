//! Issued tokens in Redis ([`RedisTokenStore`]): one hash per token record, sorted-set
//! indexes by subject and token id, and the record MAC.

use std::sync::LazyLock;

use hmac::{Hmac, Mac};
use redis::Script;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{NO_ARGS, Redis, from_unix_ms, now_ms, unix_ms};
use crate::Secret;
use crate::context::{AuthContext, AuthMethod};
use crate::store::StoreError;
use crate::store::hex::{hex, unhex};
use crate::store::{TokenDigest, TokenRecord, TokenStore};

type HmacSha256 = Hmac<Sha256>;

/// The MAC of a token record stored at `redis_key`. Domain-separated, and the key's length
/// is prefixed so key and record cannot trade bytes.
fn record_mac(key: &Secret, redis_key: &str, json: &str) -> Option<HmacSha256> {
    let mut mac = HmacSha256::new_from_slice(key.expose().as_bytes()).ok()?;
    mac.update(b"mcp-auth redis token record v1\0");
    mac.update(&u64::try_from(redis_key.len()).ok()?.to_be_bytes());
    mac.update(redis_key.as_bytes());
    mac.update(json.as_bytes());
    Some(mac)
}

/// A token record as stored: everything to rebuild its `AuthContext`, never the token.
#[derive(Serialize, Deserialize)]
struct StoredRecord {
    sub: String,
    method: String,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    audience: Vec<String>,
    /// The context's own expiry (Unix ms), when it has one.
    #[serde(default)]
    ctx_exp_ms: Option<u64>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    claims: Option<serde_json::Map<String, serde_json::Value>>,
    /// The record's expiry (Unix ms).
    exp_ms: u64,
}

impl StoredRecord {
    fn of(record: &TokenRecord) -> Self {
        let c = record.context();
        Self {
            sub: c.subject().to_owned(),
            method: c.method().as_str().to_owned(),
            scopes: c.scopes().iter().map(String::from).collect(),
            roles: c.roles().map(String::from).collect(),
            client_id: c.client_id().map(String::from),
            issuer: c.issuer().map(String::from),
            audience: c.audience().to_vec(),
            ctx_exp_ms: c.expires_at().map(unix_ms),
            id: c.credential_id().map(String::from),
            claims: c.claims().cloned(),
            exp_ms: unix_ms(record.expires_at()),
        }
    }

    /// The record, or `None` when a time in it is out of the platform's range.
    fn into_record(self, revoked: bool) -> Option<TokenRecord> {
        let method = AuthMethod::from_name(&self.method);
        let mut b = AuthContext::builder(self.sub, method)
            .scopes(self.scopes)
            .roles(self.roles)
            .audience(self.audience);
        if let Some(ms) = self.ctx_exp_ms {
            b = b.expires_at(from_unix_ms(ms)?);
        }
        if let Some(c) = self.client_id {
            b = b.client_id(c);
        }
        if let Some(i) = self.issuer {
            b = b.issuer(i);
        }
        if let Some(id) = self.id {
            b = b.credential_id(id);
        }
        if let Some(claims) = self.claims {
            b = b.claims(claims);
        }
        let record = TokenRecord::new(b.build(), from_unix_ms(self.exp_ms)?);
        Some(if revoked {
            record.into_revoked()
        } else {
            record
        })
    }
}

/// Stores a record and lists it in its indexes. KEYS: the record, then the indexes. ARGV: the
/// record JSON, its revoked flag, its expiry and now (Unix ms), its MAC (hex; empty: none).
/// Each index drops members that expired and lives as long as its last member.
static INSERT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('HSET', KEYS[1], 'r', ARGV[1], 'v', ARGV[2])
if ARGV[5] == '' then
  redis.call('HDEL', KEYS[1], 'm')
else
  redis.call('HSET', KEYS[1], 'm', ARGV[5])
end
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
for i = 2, #KEYS do
  redis.call('ZADD', KEYS[i], ARGV[3], KEYS[1])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', ARGV[4])
  local last = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')
  if last[2] then
    redis.call('PEXPIREAT', KEYS[i], string.format('%.0f', tonumber(last[2])))
  end
end
return 1",
    )
});

/// Marks one record revoked, keeping its expiry; 1 when the record exists (revoked before or
/// not), 0 when unknown (never creates a key).
static REVOKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'v', '1')
return 1",
    )
});

/// Marks every live, not yet revoked record of an index revoked; returns how many. KEYS: the
/// index. ARGV: now (Unix ms). The record keys come from the index itself (so this needs a
/// single Redis, not Cluster).
static REVOKE_INDEX: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local n = 0
for _, k in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if redis.call('HGET', k, 'v') == '0' then
    redis.call('HSET', k, 'v', '1')
    n = n + 1
  end
end
return n",
    )
});

/// Issued tokens in Redis (see the [module docs](super)): records expire with their tokens;
/// revoked ones stay (flagged) until then, so the authenticator can tell "revoked".
#[derive(Clone, Debug)]
pub struct RedisTokenStore {
    pub(super) redis: Redis,
}

impl RedisTokenStore {
    fn record_key(&self, digest: &TokenDigest) -> String {
        format!("{}tok:{}", self.redis.inner.prefix, hex(digest.as_bytes()))
    }

    async fn revoke_index(&self, index: String) -> Result<usize, StoreError> {
        let now = now_ms();
        let n: i64 = self.redis.eval(&REVOKE_INDEX, &index, now).await?;
        Ok(usize::try_from(n).unwrap_or(0))
    }
}

impl TokenStore for RedisTokenStore {
    async fn get(&self, digest: &TokenDigest) -> Result<Option<TokenRecord>, StoreError> {
        let key = self.record_key(digest);
        let (raw, revoked, mac): (Option<String>, Option<String>, Option<String>) = self
            .redis
            .run(|mut c| {
                let key = key.clone();
                async move {
                    redis::cmd("HMGET")
                        .arg(&key)
                        .arg("r")
                        .arg("v")
                        .arg("m")
                        .query_async(&mut c)
                        .await
                }
            })
            .await?;
        let Some(json) = raw else {
            return Ok(None);
        };
        if let Some(record_key) = &self.redis.inner.record_key {
            let Some(expected) = record_mac(record_key, &key, &json) else {
                return Err(StoreError::unavailable(
                    "redis: cannot compute a record MAC",
                ));
            };
            let verdict = match mac.as_deref().map(unhex) {
                None => Err("no MAC"),
                Some(None) => Err("malformed MAC"),
                // Constant-time comparison.
                Some(Some(tag)) => expected.verify_slice(&tag).map_err(|_| "wrong MAC"),
            };
            if let Err(why) = verdict {
                self.redis.integrity_failure(why);
                return Ok(None);
            }
        }
        match serde_json::from_str::<StoredRecord>(&json)
            .ok()
            .and_then(|r| r.into_record(revoked.as_deref() == Some("1")))
        {
            Some(record) => Ok(Some(record)),
            None => Err(StoreError::unavailable(
                "redis: a token record does not parse",
            )),
        }
    }

    /// Stores the record until it expires (an already expired record is not stored).
    async fn insert(&self, digest: TokenDigest, record: TokenRecord) -> Result<(), StoreError> {
        let stored = StoredRecord::of(&record);
        let exp_ms = stored.exp_ms;
        let now = now_ms();
        if exp_ms <= now {
            return Ok(());
        }
        let key = self.record_key(&digest);
        let mut indexes = vec![self.redis.key("tok-sub", &stored.sub)];
        if let Some(id) = &stored.id {
            indexes.push(self.redis.key("tok-id", id));
        }
        let json = serde_json::to_string(&stored)
            .map_err(|_| StoreError::unavailable("redis: cannot encode a token record"))?;
        let revoked = if record.is_revoked() { "1" } else { "0" };
        let mac = match &self.redis.inner.record_key {
            None => String::new(),
            Some(record_key) => record_mac(record_key, &key, &json)
                .map(|m| hex(&m.finalize().into_bytes()))
                .ok_or_else(|| StoreError::unavailable("redis: cannot compute a record MAC"))?,
        };
        self.redis
            .run(|mut c| async move {
                let mut inv = INSERT.key(&key);
                for index in &indexes {
                    inv.key(index);
                }
                inv.arg(json)
                    .arg(revoked)
                    .arg(exp_ms)
                    .arg(now)
                    .arg(mac)
                    .invoke_async::<i64>(&mut c)
                    .await
            })
            .await
            .map(|_| ())
    }

    async fn revoke(&self, digest: &TokenDigest) -> Result<bool, StoreError> {
        let key = self.record_key(digest);
        let done: i64 = self.redis.eval(&REVOKE, &key, NO_ARGS).await?;
        Ok(done == 1)
    }

    async fn revoke_id(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.revoke_index(self.redis.key("tok-id", id)).await? > 0)
    }

    async fn revoke_subject(&self, subject: &str) -> Result<usize, StoreError> {
        self.revoke_index(self.redis.key("tok-sub", subject)).await
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::super::RedisConfig;
    use super::*;

    #[test]
    fn record_macs_bind_the_record_to_its_key() {
        let k = Secret::new("k".repeat(32));
        let tag = |key: &Secret, at: &str, json: &str| {
            record_mac(key, at, json)
                .unwrap()
                .finalize()
                .into_bytes()
                .to_vec()
        };
        let genuine = tag(&k, "p:tok:aa", "{}");
        assert_eq!(unhex(&hex(&genuine)).unwrap(), genuine);
        assert!(
            record_mac(&k, "p:tok:aa", "{}")
                .unwrap()
                .verify_slice(&genuine)
                .is_ok()
        );
        assert_ne!(genuine, tag(&k, "p:tok:ab", "{}"), "moved to another key");
        assert_ne!(genuine, tag(&k, "p:tok:aa", "{ }"), "edited record");
        assert_ne!(
            genuine,
            tag(&k, "p:tok:a", "a{}"),
            "key and record trade bytes"
        );
        assert_ne!(genuine, tag(&Secret::new("j".repeat(32)), "p:tok:aa", "{}"));
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("abc"), None);
    }

    #[test]
    fn keys_hash_what_clients_choose() {
        let redis = Redis::new(RedisConfig::new("redis://127.0.0.1:1").key_prefix("p:")).unwrap();
        let k = redis.key("tok-sub", "alice\r\n*");
        assert!(
            k.starts_with("p:tok-sub:") && k.len() == "p:tok-sub:".len() + 64,
            "{k}"
        );
        let d = TokenDigest::of("a-token");
        let tk = redis.token_store().record_key(&d);
        assert!(!tk.contains("a-token") && tk.starts_with("p:tok:"), "{tk}");
    }

    #[test]
    fn records_round_trip() {
        let exp = UNIX_EPOCH + Duration::from_millis(4_000_000_000_123);
        let mut claims = serde_json::Map::new();
        claims.insert("team".into(), "blue".into());
        let ctx = AuthContext::builder("alice", AuthMethod::Custom("mtls".into()))
            .scopes(["a", "b"])
            .roles(["r"])
            .client_id("app")
            .issuer("https://as")
            .audience(["x"])
            .expires_at(exp)
            .credential_id("id-1")
            .claims(claims)
            .build();
        let json = serde_json::to_string(&StoredRecord::of(&TokenRecord::new(ctx, exp))).unwrap();
        assert!(!json.contains("a-token"));
        let back = serde_json::from_str::<StoredRecord>(&json)
            .unwrap()
            .into_record(true)
            .unwrap();
        let c = back.context();
        assert!(back.is_revoked());
        assert_eq!(back.expires_at(), exp);
        assert_eq!(c.subject(), "alice");
        assert_eq!(c.method().as_str(), "mtls");
        assert!(c.has_scope("a") && c.has_scope("b") && c.has_role("r"));
        assert_eq!(
            (c.client_id(), c.issuer(), c.credential_id()),
            (Some("app"), Some("https://as"), Some("id-1"))
        );
        assert_eq!(c.audience(), ["x"]);
        assert_eq!(c.expires_at(), Some(exp));
        assert_eq!(c.claims().unwrap()["team"], "blue");
        for m in [
            AuthMethod::ApiKey,
            AuthMethod::Bearer,
            AuthMethod::Jwt,
            AuthMethod::Introspection,
            AuthMethod::ClientCertificate,
        ] {
            let r = TokenRecord::new(AuthContext::builder("s", m.clone()).build(), exp);
            let json = serde_json::to_string(&StoredRecord::of(&r)).unwrap();
            let back = serde_json::from_str::<StoredRecord>(&json).unwrap();
            assert_eq!(back.into_record(false).unwrap().context().method(), &m);
        }
    }
}
