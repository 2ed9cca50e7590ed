//! A store wrapper that refuses one kind of call, as a store that is briefly unavailable would.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use webhookd_store::{Around, Result, StoreError};

/// Refuses the first `failures_left` calls named `call` with [`StoreError::Unavailable`] and
/// counts every call of that name; every other call goes through.
pub(crate) struct Refusing {
    call: &'static str,
    pub(crate) failures_left: AtomicUsize,
    pub(crate) calls: AtomicUsize,
}

impl Refusing {
    pub(crate) fn new(call: &'static str, failures: usize) -> Self {
        Self {
            call,
            failures_left: AtomicUsize::new(failures),
            calls: AtomicUsize::new(0),
        }
    }
}

impl Around for Refusing {
    async fn around<T, F>(&self, call: &'static str, work: F) -> Result<T>
    where
        T: Send,
        F: Future<Output = Result<T>> + Send,
    {
        if call == self.call {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let refuse = self
                .failures_left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                    left.checked_sub(1)
                })
                .is_ok();
            if refuse {
                return Err(StoreError::Unavailable(format!(
                    "`{call}` refused by the test"
                )));
            }
        }
        work.await
    }
}
