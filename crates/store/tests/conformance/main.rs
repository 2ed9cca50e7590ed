//! The storage conformance suite: one set of tests, each a function of `&dyn Store`, run
//! against every backend. SQLite runs always; PostgreSQL when `WEBHOOKD_TEST_DATABASE_URL`
//! names a server (see `support`). A behaviour the API or the engine relies on belongs here,
//! so that both backends are held to it.
//!
//! Test names read `<backend>::<behaviour>`, e.g. `postgres::concurrent_claims_are_disjoint`.
//! What only one backend has (PostgreSQL's start-up from blocking code, its LISTEN
//! connection) is tested in `postgres_only`.

mod access;
mod admin;
mod bulk;
mod claims;
mod endpoint_options;
mod message_filters;
mod messages;
mod operational;
mod ordered;
mod outcomes;
mod poll;
mod postgres_only;
mod resources;
mod rollup;
mod support;

/// Declares each listed test once per backend.
macro_rules! conformance {
    ($($module:ident :: $test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    crate::support::on_sqlite(|store| Box::pin(crate::$module::$test(store))).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    crate::support::on_postgres(|store| Box::pin(crate::$module::$test(store))).await;
                }
            )*
        }
    };
}

conformance! {
    resources::applications_crud_and_uid_conflicts,
    resources::deleting_an_application_deletes_what_it_holds,
    resources::endpoints_crud_and_uid_conflicts,
    resources::event_types_archive_and_conflict,
    resources::pages_go_forward_backward_and_descending,
    resources::endpoints_are_listed_across_applications,
    resources::sensitive_headers_round_trip_sealed,
    messages::fan_out_follows_event_types_channels_and_disabled,
    endpoint_options::fan_out_honours_payload_filters,
    endpoint_options::endpoint_overrides_round_trip,
    endpoint_options::replay_missing_honours_the_payload_filter,
    messages::event_id_is_unique_per_application,
    messages::message_list_filters,
    messages::attempts_and_deliveries_are_listed,
    claims::fresh_deliveries_are_leased_to_the_ingesting_node,
    claims::deliver_at_holds_until_due,
    claims::concurrent_claims_are_disjoint,
    claims::claims_skip_endpoints_and_take_oldest_due_first,
    claims::leases_renew_and_release,
    claims::other_nodes_are_woken_by_due_work,
    outcomes::recorded_attempts_move_deliveries,
    outcomes::canceled_stays_canceled,
    outcomes::manual_attempts_never_schedule,
    outcomes::endpoint_health_is_recorded,
    outcomes::recover_reopens_failed_and_canceled_in_window,
    outcomes::stats_and_queue_depth,
    outcomes::retention_keeps_pending_payloads,
    outcomes::a_refused_batch_writes_nothing,
    outcomes::results_for_one_delivery_apply_in_order,
    admin::idempotent_responses_are_saved_with_their_effect,
    admin::tokens,
    admin::background_tasks,
    admin::resend_requests_are_queued_once_and_taken_once,
    admin::a_live_idempotency_key_refuses_a_second_effect,
    bulk::replay_missing_fills_only_absent_deliveries,
    bulk::replay_deliveries_reopens_finished_ones_by_filter,
    bulk::expunged_contents_are_erased,
    bulk::usage_counts_deliveries_per_application,
    bulk::a_message_to_one_endpoint_goes_there_alone,
    operational::operational_events_are_stored_with_their_cause,
    access::app_tokens_are_found_by_hash_and_expire_forward,
    access::sessions_are_kept_by_hash_and_pruned_when_expired,
    rollup::batches_add_into_their_minutes,
    rollup::a_refused_batch_adds_nothing,
    rollup::old_minutes_are_pruned,
    message_filters::every_filter_pages_in_id_order,
    ordered::ordered_claims_hand_out_the_head_of_the_line_only,
    ordered::concurrent_claims_take_one_head_per_line,
    ordered::an_expired_head_is_taken_over_in_order,
    ordered::recover_and_requeue_join_the_end_of_the_line,
    ordered::turning_ordering_on_and_off_keeps_pending_work,
    poll::polling_streams_read_in_commit_order_from_their_start,
    poll::poll_offsets_are_kept_per_consumer,
    poll::poller_tokens_rotate_and_retire_forward,
}
