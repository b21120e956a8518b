//! The session binding layer over a stand-in MCP service.

use super::*;
use crate::store::{MemorySessionStore, Owner, SessionDigest, SessionStore};

// --- the layer, over a stand-in MCP service ---------------------------------------------

use std::sync::atomic::{AtomicUsize, Ordering};
use tower::{ServiceExt, service_fn};

/// Creates session "s-<n>" for requests without one, answers DELETE with 202 and counts
/// the requests it sees.
fn mcp(
    seen: Arc<AtomicUsize>,
) -> impl Service<
    Request<()>,
    Response = Response<String>,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone
+ Send
+ 'static {
    service_fn(move |req: Request<()>| {
        let n = seen.fetch_add(1, Ordering::SeqCst);
        async move {
            let mut res = Response::new(String::from("ok"));
            if req.method() == Method::DELETE {
                *res.status_mut() = StatusCode::ACCEPTED;
            } else if !req.headers().contains_key(SESSION_HEADER) {
                res.headers_mut()
                    .insert(SESSION_HEADER, format!("s-{n}").parse().unwrap());
            }
            Ok(res)
        }
    })
}

fn req(method: Method, who: Option<&str>, sessions: &[&str]) -> Request<()> {
    let mut req = Request::builder().method(method).uri("/mcp");
    for s in sessions {
        req = req.header(SESSION_HEADER, *s);
    }
    let mut req = req.body(()).unwrap();
    match who {
        Some("") => {
            req.extensions_mut().insert(Anonymous);
        }
        Some(who) => {
            req.extensions_mut()
                .insert(AuthContext::builder(who, crate::AuthMethod::ApiKey).build());
        }
        None => {}
    }
    req
}

async fn status<St: SessionStore>(
    svc: &SessionBinding<
        impl Service<
            Request<()>,
            Response = Response<String>,
            Error = std::convert::Infallible,
            Future = impl Send + 'static,
        > + Clone
        + Send
        + 'static,
        St,
    >,
    r: Request<()>,
) -> (StatusCode, Option<String>) {
    let res = svc.clone().oneshot(r).await.unwrap();
    let id = res
        .headers()
        .get(SESSION_HEADER)
        .map(|v| v.to_str().unwrap().to_owned());
    (res.status(), id)
}

#[tokio::test]
async fn delete_unbinds_only_the_owners_session() {
    let seen = Arc::new(AtomicUsize::new(0));
    let store = MemorySessionStore::new();
    let svc = SessionBindingLayer::new(store.clone()).layer(mcp(seen.clone()));
    let (_, id) = status(&svc, req(Method::POST, Some("alice"), &[])).await;
    let id = id.unwrap();
    assert_eq!(store.len(), 1);
    let r = status(&svc, req(Method::DELETE, Some("bob"), &[&id])).await;
    assert_eq!(r.0, StatusCode::NOT_FOUND);
    assert_eq!(store.len(), 1, "bob's DELETE left it");
    assert_eq!(
        seen.load(Ordering::SeqCst),
        1,
        "and never reached the service"
    );
    let r = status(&svc, req(Method::DELETE, Some("alice"), &[&id])).await;
    assert_eq!(r.0, StatusCode::ACCEPTED);
    assert!(store.is_empty());
    let r = status(&svc, req(Method::POST, Some("alice"), &[&id])).await;
    assert_eq!(r.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn anonymous_sessions_belong_to_anonymous_callers_only() {
    let seen = Arc::new(AtomicUsize::new(0));
    let svc = SessionBindingLayer::new(MemorySessionStore::new()).layer(mcp(seen.clone()));
    let (_, anon) = status(&svc, req(Method::POST, Some(""), &[])).await;
    let (_, alice) = status(&svc, req(Method::POST, Some("alice"), &[])).await;
    let (anon, alice) = (anon.unwrap(), alice.unwrap());
    assert_eq!(
        status(&svc, req(Method::GET, Some(""), &[&anon])).await.0,
        StatusCode::OK
    );
    assert_eq!(
        status(&svc, req(Method::GET, Some("alice"), &[&anon]))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status(&svc, req(Method::GET, Some(""), &[&alice])).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status(&svc, req(Method::GET, Some("alice"), &[&alice]))
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn without_an_auth_context_or_with_two_session_headers_nothing_passes() {
    let seen = Arc::new(AtomicUsize::new(0));
    let svc = SessionBindingLayer::new(MemorySessionStore::new()).layer(mcp(seen.clone()));
    let (_, id) = status(&svc, req(Method::POST, Some("alice"), &[])).await;
    let id = id.unwrap();
    let before = seen.load(Ordering::SeqCst);
    let r = status(&svc, req(Method::POST, None, &[])).await;
    assert_eq!(r, (StatusCode::INTERNAL_SERVER_ERROR, None), "wiring bug");
    let r = status(&svc, req(Method::POST, Some("alice"), &[&id, "s-99"])).await;
    assert_eq!(r.0, StatusCode::BAD_REQUEST);
    let r = status(&svc, req(Method::POST, Some("bob"), &["s-99", &id])).await;
    assert_eq!(r.0, StatusCode::BAD_REQUEST);
    assert_eq!(seen.load(Ordering::SeqCst), before);
}

/// A store that cannot answer.
struct Down;
impl SessionStore for Down {
    async fn owner(&self, _: &SessionDigest) -> Result<Option<Owner>, StoreError> {
        Err(StoreError::unavailable("down"))
    }
    async fn bind(&self, _: &SessionDigest, _: &Owner) -> Result<Owner, StoreError> {
        Err(StoreError::unavailable("down"))
    }
    async fn unbind(&self, _: &SessionDigest, _: &Owner) -> Result<bool, StoreError> {
        Err(StoreError::unavailable("down"))
    }
}

#[tokio::test]
async fn a_store_that_cannot_answer_fails_closed() {
    let seen = Arc::new(AtomicUsize::new(0));
    let svc = SessionBindingLayer::new(Down).layer(mcp(seen.clone()));
    // Use of a session: 503 before the service.
    let res = svc
        .clone()
        .oneshot(req(Method::GET, Some("alice"), &["s-1"]))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()[http::header::RETRY_AFTER], "5");
    assert_eq!(seen.load(Ordering::SeqCst), 0);
    // Creation: the id is never handed out unbound.
    let r = status(&svc, req(Method::POST, Some("alice"), &[])).await;
    assert_eq!(r, (StatusCode::SERVICE_UNAVAILABLE, None));
}
