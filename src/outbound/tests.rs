//! Unit tests of the outbound caches, sources and layer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use tower_layer::Layer as _;
use tower_service::Service as _;

use super::cache::{Slot, SlotMap, serve_for};
use super::*;
use crate::{AuthContext, AuthMethod, Secret};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

#[test]
fn expiry_skew_keeps_at_least_half_the_lifetime_and_the_caller_caps_it() {
    let skew = Duration::from_secs(30);
    let none = Duration::from_secs(60);
    assert_eq!(
        serve_for(Some(3600), skew, none, None),
        Duration::from_secs(3570)
    );
    assert_eq!(
        serve_for(Some(40), skew, none, None),
        Duration::from_secs(20)
    );
    assert_eq!(serve_for(Some(0), skew, none, None), Duration::ZERO);
    assert_eq!(serve_for(None, skew, none, None), none);
    let soon = SystemTime::now() + Duration::from_secs(10);
    assert!(serve_for(Some(3600), skew, none, Some(soon)) <= Duration::from_secs(10));
    let past = SystemTime::now() - Duration::from_secs(1);
    assert_eq!(
        serve_for(Some(3600), skew, none, Some(past)),
        Duration::ZERO
    );
}

#[test]
fn a_slot_fetches_once_for_many_waiters_and_shares_a_failure() {
    rt().block_on(async {
        let slot = Arc::new(Slot::default());
        let fetches = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (slot, fetches) = (Arc::clone(&slot), Arc::clone(&fetches));
            tasks.push(tokio::spawn(async move {
                slot.get_or_fetch(|| async {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Ok((
                        Credential::bearer(&Secret::new("t1")),
                        Duration::from_secs(60),
                    ))
                })
                .await
            }));
        }
        for t in tasks {
            assert!(t.await.unwrap().is_ok());
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);

        // Invalidating another token keeps this one; invalidating it forgets it.
        slot.invalidate(&Credential::bearer(&Secret::new("other")));
        assert!(slot.fresh().is_some());
        slot.invalidate(&Credential::bearer(&Secret::new("t1")));
        assert!(slot.fresh().is_none());

        // A failing fetch: the waiters of that wave get its error, one request in all.
        let failing = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (slot, failing) = (Arc::clone(&slot), Arc::clone(&failing));
            tasks.push(tokio::spawn(async move {
                slot.get_or_fetch(|| async {
                    failing.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Err(OutboundError::Unreachable)
                })
                .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap_err(), OutboundError::Unreachable);
        }
        assert_eq!(failing.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn the_slot_map_is_bounded_and_evicts_the_oldest() {
    let map: SlotMap<u32> = SlotMap::new(3);
    let first = map.slot(&1);
    map.slot(&2);
    map.slot(&3);
    assert!(Arc::ptr_eq(&first, &map.slot(&1)));
    map.slot(&4);
    assert_eq!(map.len(), 3);
    assert!(map.get(&1).is_none());
    assert!(map.get(&4).is_some());
}

#[test]
fn nothing_secret_prints() {
    let secret = "sk_outbound_0123456789";
    let cred = Credential::bearer(&Secret::new(secret));
    let kept = InboundToken::new(Secret::new(secret));
    let ctx = AuthContext::builder("alice", AuthMethod::Bearer).build();
    let caller = Caller::new(&ctx, Some(&kept));
    let src = StaticCredential::bearer(Secret::new(secret));
    let printed = format!(
        "{cred:?} {kept:?} {caller:?} {src:?} {:?}",
        cred.header_value()
    );
    assert!(!printed.contains(secret), "{printed}");
    assert!(cred.header_value().unwrap().is_sensitive());
    assert_eq!(
        OutboundError::refused(Some("bad\"code")),
        OutboundError::Refused {
            error: "unknown".into()
        }
    );
    assert_eq!(
        OutboundError::refused(Some(&"x".repeat(65))),
        OutboundError::Refused {
            error: "unknown".into()
        }
    );
}

#[test]
fn the_guard_refuses_the_inbound_token_in_any_form() {
    let kept = InboundToken::new(Secret::new("user-token"));
    let ctx = AuthContext::builder("alice", AuthMethod::Bearer).build();
    let caller = Caller::new(&ctx, Some(&kept));
    let refused = [
        Credential::bearer(&Secret::new("user-token")),
        Credential::header(
            http::HeaderName::from_static("x-api-key"),
            Secret::new("user-token"),
        ),
        Credential::header(http::header::AUTHORIZATION, Secret::new("Token user-token")),
    ];
    for c in refused {
        assert_eq!(
            c.check_not_inbound(&caller),
            Err(OutboundError::Passthrough)
        );
    }
    assert!(
        Credential::bearer(&Secret::new("other"))
            .check_not_inbound(&caller)
            .is_ok()
    );
    assert!(
        Credential::bearer(&Secret::new("user-token"))
            .check_not_inbound(&Caller::service())
            .is_ok()
    );
}

/// A source that hands out `t1`, `t2`, … and counts its fetches.
#[derive(Default)]
struct Counting {
    fetches: AtomicUsize,
    current: std::sync::Mutex<Option<Credential>>,
}

impl TokenSource for Counting {
    fn credential<'a>(&'a self, _caller: &'a Caller) -> CredentialFuture<'a> {
        let mut cur = self.current.lock().unwrap();
        let c = cur.get_or_insert_with(|| {
            let n = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
            Credential::bearer(&Secret::new(format!("t{n}")))
        });
        Box::pin(std::future::ready(Ok(c.clone())))
    }
    fn invalidate(&self, _caller: &Caller, rejected: &Credential) {
        let mut cur = self.current.lock().unwrap();
        if cur.as_ref().is_some_and(|c| c.same_token(rejected)) {
            *cur = None;
        }
    }
}

#[test]
fn the_layer_retries_once_after_a_401_with_a_fresh_credential() {
    rt().block_on(async {
        let source = Arc::new(Counting::default());
        let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let upstreams = Upstreams::new().host("api.example.com", Arc::clone(&source));
        let inner_seen = Arc::clone(&seen);
        let inner = tower::service_fn(move |req: http::Request<String>| {
            let seen = Arc::clone(&inner_seen);
            async move {
                let auth = req.headers()["authorization"].to_str().unwrap().to_owned();
                assert_eq!(req.body(), "payload");
                let status = if auth == "Bearer t1" { 401 } else { 200 };
                seen.lock().unwrap().push(auth);
                let mut res = http::Response::new(());
                *res.status_mut() = http::StatusCode::from_u16(status).unwrap();
                Ok::<_, std::convert::Infallible>(res)
            }
        });
        let mut svc = OutboundLayer::new(upstreams).layer(inner);
        std::future::poll_fn(|cx| svc.poll_ready(cx)).await.unwrap();
        let req = http::Request::post("https://api.example.com/x")
            .body("payload".to_owned())
            .unwrap();
        let res = svc.call(req).await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(*seen.lock().unwrap(), ["Bearer t1", "Bearer t2"]);
        assert_eq!(source.fetches.load(Ordering::SeqCst), 2);

        // Another host: no credential added, passed through as is.
        std::future::poll_fn(|cx| svc.poll_ready(cx)).await.unwrap();
        let req = http::Request::get("https://other.example.com/")
            .header("authorization", "Bearer mine")
            .body("payload".to_owned())
            .unwrap();
        assert_eq!(svc.call(req).await.unwrap().status(), 200);
    });
}

#[test]
fn keep_inbound_token_keeps_only_authenticated_bearer_and_dpop_tokens() {
    rt().block_on(async {
        let kept = Arc::new(std::sync::Mutex::new(Vec::new()));
        let k = Arc::clone(&kept);
        let mut svc =
            KeepInboundTokenLayer::new().layer(tower::service_fn(move |req: http::Request<()>| {
                k.lock().unwrap().push(
                    req.extensions()
                        .get::<InboundToken>()
                        .map(|t| t.matches("abc")),
                );
                async { Ok::<_, std::convert::Infallible>(()) }
            }));
        let ctx = AuthContext::builder("alice", AuthMethod::Bearer).build();
        for (auth, with_ctx) in [
            ("Bearer abc", true),
            ("DPoP abc", true),
            ("Bearer abc", false),
            ("Basic abc", true),
        ] {
            let mut req = http::Request::builder()
                .header("authorization", auth)
                .body(())
                .unwrap();
            if with_ctx {
                req.extensions_mut().insert(ctx.clone());
            }
            svc.call(req).await.unwrap();
        }
        assert_eq!(*kept.lock().unwrap(), [Some(true), Some(true), None, None]);
    });
}
