//! [`RefreshTokenStore`]: where the newest refresh token of a [`RefreshTokenGrant`] lives
//! (memory, a file, Redis).
//!
//! [`RefreshTokenGrant`]: super::RefreshTokenGrant

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use super::error::OutboundError;
use crate::secret::Secret;

/// The future of a [`RefreshTokenStore`] operation.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, OutboundError>> + Send + 'a>>;

/// Keeps the newest refresh token, so a restart continues with it (an authorization server
/// that rotates refresh tokens refuses the old one once used).
pub trait RefreshTokenStore: Send + Sync + 'static {
    /// The refresh token saved last, if any.
    fn load(&self) -> StoreFuture<'_, Option<Secret>>;
    /// Saves `token`, replacing the one before.
    fn save<'a>(&'a self, token: &'a Secret) -> StoreFuture<'a, ()>;
}

/// A refresh token in memory (shared by clones; lost on restart).
#[derive(Clone, Default)]
pub struct MemoryRefreshTokenStore(Arc<Mutex<Option<Secret>>>);

impl MemoryRefreshTokenStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

impl fmt::Debug for MemoryRefreshTokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MemoryRefreshTokenStore([REDACTED])")
    }
}

impl RefreshTokenStore for MemoryRefreshTokenStore {
    fn load(&self) -> StoreFuture<'_, Option<Secret>> {
        let t = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        Box::pin(std::future::ready(Ok(t)))
    }
    fn save<'a>(&'a self, token: &'a Secret) -> StoreFuture<'a, ()> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(token.clone());
        Box::pin(std::future::ready(Ok(())))
    }
}

/// A refresh token in a file: written atomically (a temporary file in the same directory,
/// mode 0600 on Unix, then renamed over the old one), read back on start.
#[derive(Debug, Clone)]
pub struct FileRefreshTokenStore {
    path: PathBuf,
}

impl FileRefreshTokenStore {
    /// The store at `path` (its directory must exist).
    #[must_use]
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self {
            path: path.as_ref().to_owned(),
        }
    }

    fn read(&self) -> Result<Option<Secret>, OutboundError> {
        match std::fs::read_to_string(&self.path) {
            Ok(s) => {
                let s = zeroize::Zeroizing::new(s);
                let t = s.trim();
                Ok((!t.is_empty()).then(|| Secret::new(t)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(OutboundError::Store(format!(
                "cannot read the refresh token file: {}",
                e.kind()
            ))),
        }
    }

    fn write(&self, token: &Secret) -> Result<(), OutboundError> {
        use std::io::Write as _;
        let fail = |e: std::io::Error| {
            OutboundError::Store(format!("cannot write the refresh token file: {}", e.kind()))
        };
        let mut tmp_name = self.path.file_name().unwrap_or_default().to_owned();
        tmp_name.push(".tmp");
        let tmp = self.path.with_file_name(tmp_name);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp).map_err(fail)?;
        file.write_all(token.expose().as_bytes()).map_err(fail)?;
        file.sync_all().map_err(fail)?;
        drop(file);
        std::fs::rename(&tmp, &self.path).map_err(fail)
    }
}

impl RefreshTokenStore for FileRefreshTokenStore {
    fn load(&self) -> StoreFuture<'_, Option<Secret>> {
        Box::pin(std::future::ready(self.read()))
    }
    fn save<'a>(&'a self, token: &'a Secret) -> StoreFuture<'a, ()> {
        Box::pin(std::future::ready(self.write(token)))
    }
}
