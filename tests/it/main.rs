//! Siyu's integration tests, one binary for the whole suite (one link instead of one per file):
//! each module starts the real app (on a random port where it serves HTTP) or the real store,
//! on SQLite and on PostgreSQL (`SIYU_TEST_DATABASE_URL`). `common` holds the harness.

#[macro_use]
mod common;

mod acquire;
mod activities;
mod api;
mod api_docs;
mod attribution;
mod audience;
mod campaign_policy;
mod cards;
mod channel_data;
mod concurrency;
mod connect;
mod console;
mod console_access;
mod console_activities;
mod console_brand;
mod console_builder;
mod console_campaigns;
mod console_coupons;
mod console_customers;
mod console_e2e;
mod console_imports;
mod console_live_codes;
mod console_policy;
mod console_wecom;
mod console_words;
mod coupons;
mod crash;
mod customer_sessions;
mod exports_corpus;
mod flash;
mod foreign_ids;
mod import;
mod ingest;
mod layering_api;
mod lookup_rekey;
mod members;
mod migrations_match;
mod oneid;
mod order_workflow;
mod outbox_where_written;
mod payments_setting;
mod request_limits;
mod rows;
mod shop_authorization;
mod sync;
mod trends;
mod workers;
