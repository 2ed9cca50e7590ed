//! Walks every application, or every endpoint of one, through the store's pages: for the
//! work that touches everything (heartbeats, re-sealing secrets, start-up checks).

use webhookd_core::AppId;
use webhookd_core::model::{Application, Endpoint};
use webhookd_store::{Cursor, Page, PageRequest, Store, StoreError};

/// Reads page after page until `done`, keyed by each item's id.
async fn all<T, F, Fut>(mut read: F, key: impl Fn(&T) -> String) -> Result<Vec<T>, StoreError>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: Future<Output = Result<Page<T>, StoreError>>,
{
    let mut items = Vec::new();
    let mut page = PageRequest {
        limit: 250,
        ..PageRequest::default()
    };
    loop {
        let read_page = read(page.clone()).await?;
        let next = read_page.items.last().map(&key);
        let done = read_page.done;
        items.extend(read_page.items);
        match next {
            Some(key) if !done => {
                page.cursor = Some(Cursor {
                    key,
                    backward: false,
                })
            }
            _ => return Ok(items),
        }
    }
}

pub async fn applications(store: &dyn Store) -> Result<Vec<Application>, StoreError> {
    all(
        |page| async move { store.list_applications(&page).await },
        |app: &Application| app.id.to_string(),
    )
    .await
}

pub async fn endpoints(store: &dyn Store, app: &AppId) -> Result<Vec<Endpoint>, StoreError> {
    all(
        |page| async move { store.list_endpoints(app, &page).await },
        |endpoint: &Endpoint| endpoint.id.to_string(),
    )
    .await
}
