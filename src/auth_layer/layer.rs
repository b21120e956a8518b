//! [`AuthLayer`] and its builder methods.

use std::fmt;
use std::sync::Arc;

use tower_layer::Layer;

use super::{Authenticator, Gate, RequireAuth};
use crate::rejection::{Challenge, DefaultRejection, RejectionResponse};

/// Layer that authenticates every request with an [`Authenticator`].
///
/// [`ApiKeyLayer`](crate::ApiKeyLayer) and [`BearerLayer`](crate::BearerLayer) are this
/// layer with their own authenticators. See the [crate docs](crate) for a full stack.
#[must_use]
pub struct AuthLayer<A, R = DefaultRejection> {
    authenticator: Arc<A>,
    responder: Arc<R>,
    challenge: Challenge,
    optional: bool,
}

impl<A, R> Clone for AuthLayer<A, R> {
    fn clone(&self) -> Self {
        Self {
            authenticator: self.authenticator.clone(),
            responder: self.responder.clone(),
            challenge: self.challenge.clone(),
            optional: self.optional,
        }
    }
}

impl<A: fmt::Debug, R> fmt::Debug for AuthLayer<A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthLayer")
            .field("authenticator", &self.authenticator)
            .field("challenge", &self.challenge)
            .field("optional", &self.optional)
            .finish_non_exhaustive()
    }
}

impl<A: Authenticator> AuthLayer<A> {
    /// A layer requiring `authenticator` to accept every request. The challenge schemes come
    /// from [`Authenticator::schemes`].
    pub fn new(authenticator: A) -> Self {
        let challenge = Challenge::with_schemes(authenticator.schemes());
        Self {
            authenticator: Arc::new(authenticator),
            responder: Arc::new(DefaultRejection),
            challenge,
            optional: false,
        }
    }
}

impl<A: Authenticator, R: RejectionResponse> AuthLayer<A, R> {
    /// Optional mode: a request with no credentials passes without an
    /// [`AuthContext`](crate::AuthContext); a request with bad credentials is still rejected.
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }

    /// Sets the challenge `realm`.
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.challenge = self.challenge.realm(realm);
        self
    }

    /// Sets the scopes named in 401 challenges (never sent empty).
    pub fn challenge_scope<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, scopes: I) -> Self {
        self.challenge = self.challenge.scope(scopes);
        self
    }

    /// Sets `resource_metadata` (RFC 9728) for every challenge of this layer.
    pub fn resource_metadata(mut self, url: impl Into<String>) -> Self {
        self.challenge = self.challenge.resource_metadata(url);
        self
    }

    /// Points every challenge of this layer at `pr`'s metadata (`resource_metadata`) and names
    /// its basic scopes in 401s; keeps the layer's schemes and realm.
    pub fn protected_resource(mut self, pr: &crate::oauth::ProtectedResource) -> Self {
        self.challenge = pr.apply(self.challenge);
        self
    }

    /// Replaces the challenge configuration.
    pub fn challenge(mut self, challenge: Challenge) -> Self {
        self.challenge = challenge;
        self
    }

    /// Replaces the rejection response builder.
    pub fn rejection_response<R2: RejectionResponse>(self, responder: R2) -> AuthLayer<A, R2> {
        AuthLayer {
            authenticator: self.authenticator,
            responder: Arc::new(responder),
            challenge: self.challenge,
            optional: self.optional,
        }
    }

    /// The authenticator.
    #[must_use]
    pub fn authenticator(&self) -> &A {
        &self.authenticator
    }

    /// The challenge configuration.
    #[must_use]
    pub fn challenge_config(&self) -> &Challenge {
        &self.challenge
    }
}

impl<S, A, R> Layer<S> for AuthLayer<A, R> {
    type Service = RequireAuth<S, A, R>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireAuth::new(
            inner,
            Arc::new(Gate {
                authenticator: self.authenticator.clone(),
                responder: self.responder.clone(),
                challenge: self.challenge.clone(),
                optional: self.optional,
            }),
        )
    }
}
