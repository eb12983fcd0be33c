//! Additions to the engine, built on its public API: fetching one older page of a room's
//! history. It belongs in `roomler-client` and can move there unchanged.

use roomler_client::engine::PAGE_SIZE;
use roomler_client::{ClientError, Engine};
use uuid::Uuid;

/// Fetches the page of history before the oldest cached message of a room into the
/// cache, and returns how many messages it added: 0 once the room's whole history is
/// cached.
pub async fn load_older(engine: &Engine, room_id: Uuid) -> Result<usize, ClientError> {
    let cache = engine.cache();
    if cache.history_complete(room_id)? {
        return Ok(0);
    }
    // NOTE: the cache has no query for its oldest message, so this reads the room's
    // whole cached history to find it.
    let oldest = cache
        .history(room_id, None, u32::MAX)?
        .last()
        .map(|message| message.seq);
    if oldest == Some(1) {
        // Sequence numbers start at 1, so nothing older exists.
        cache.store_messages(room_id, &[], true)?;
        return Ok(0);
    }

    let page = engine
        .api()
        .history(room_id, oldest, None, PAGE_SIZE)
        .await?;
    let complete = (page.len() as u32) < PAGE_SIZE;
    cache.store_messages(room_id, &page, complete)?;
    Ok(page.len())
}
