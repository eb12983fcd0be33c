//! The store conformance suite: one set of tests, run against every backend.
//!
//! Each test is an async function in an area module that takes a freshly opened
//! `Arc<dyn Store>`, and `conformance!` instantiates it once per backend, as
//! `sqlite::NAME` and `mongodb::NAME`.
//!
//! - SQLite runs always, on a file in a temporary folder.
//! - MongoDB runs when ROOMLER_TEST_MONGODB_URL is a replica set's connection string,
//!   e.g. `mongodb://127.0.0.1:27017/?replicaSet=rs0`. Each test gets a database of
//!   its own, which is dropped after it. Without the variable, every `mongodb::` test
//!   prints `skipped: mongodb::NAME: …` to stderr and passes, because Rust's test
//!   harness has no skip decided at run time. Those lines show even without
//!   `--nocapture`.

mod accounts;
mod events;
mod fixtures;
mod harness;
mod messages;
mod rooms;

/// Defines `sqlite::NAME` and `mongodb::NAME` for each listed `module::NAME`.
macro_rules! conformance {
    ($($module:ident :: $test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    crate::harness::run_sqlite(crate::$module::$test).await;
                }
            )*
        }

        /// Skipped, with a line on stderr, unless ROOMLER_TEST_MONGODB_URL is set.
        mod mongodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    crate::harness::run_mongo(stringify!($test), crate::$module::$test).await;
                }
            )*
        }
    };
}

conformance! {
    accounts::create_user_returns_record,
    accounts::create_user_conflicts,
    accounts::users_by_keys_keeps_order,
    accounts::update_profile_notifies_user,
    accounts::sessions_resolve_until_deleted,
    accounts::set_password_ends_sessions,
    accounts::disabled_user_has_no_session,
    rooms::create_room_makes_creator_owner,
    rooms::room_path_conflicts,
    rooms::public_subroom_reaches_parent_members,
    rooms::direct_room_dedupes_pairs,
    rooms::add_member_conflicts_and_lists,
    rooms::roles_and_ownership_transfer,
    rooms::remove_member_leaves_subtree,
    rooms::ban_records_and_unban,
    rooms::rename_renames_descendant_paths,
    rooms::update_room_topic_and_password,
    rooms::directory_lists_public_tree,
    rooms::delete_room_cascades,
    rooms::invites_find_and_redeem,
    messages::post_message_is_idempotent,
    messages::room_seq_contiguous_under_concurrency,
    messages::history_pages,
    messages::thread_and_reply_previews,
    messages::edit_scrubs_replaced_text,
    messages::delete_scrubs_every_event,
    messages::reactions_set_unset_idempotent,
    messages::pins_list_newest_first,
    messages::search_respects_membership,
    messages::search_snippet_marks_are_balanced,
    messages::attachments_and_room_files,
    events::user_seq_matches_fanouts,
    events::user_seq_contiguous_under_concurrency,
    events::events_since_pages,
    events::stream_bounds_and_prune,
    events::counts_track_writes,
}
