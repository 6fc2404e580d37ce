//! b24ch: moves Bitrix24 CRM data into ClickHouse.
//!
//! One module per concern:
//! - [`config`]: the TOML config, its validation and secrets from the environment;
//! - [`bitrix`]: the Bitrix24 REST client, the per-portal governor, batch and listing,
//!   and the per-method knowledge table;
//! - [`catalog`]: the entities of a portal and their fields, discovered and diffed;
//! - [`schema`]: the Bitrix24 → ClickHouse type mapping and value normalisation;
//! - [`encode`]: typed rows → Arrow → Parquet / JSONEachRow;
//! - [`events`]: Bitrix24 events as a change feed (offline queue and `POST /v1/events`);
//! - [`serve`]: the HTTP service ClickHouse pulls from;
//! - [`dictionaries`]: reference data for ClickHouse dictionaries, for `exec` and `serve` alike;
//! - [`exec`]: executable modes ClickHouse runs itself (table function, UDF, dictionary source);
//! - [`clickhouse`]: generated DDL and `apply`;
//! - [`portal`]: connecting to the configured portal (or, in `demo` builds, the embedded one);
//! - [`pipeline`]: one entity's rows from the portal, typed, with load statistics;
//! - [`sync`]: pushing rows into ClickHouse when ClickHouse cannot pull;
//! - [`commands`]: the subcommands' jobs.
//!
//! The demo portal (crate `bitrix24-emulator`) and the local ClickHouse launcher (crate
//! `local-clickhouse`) come in through the default `demo` feature.
pub mod bitrix;
pub mod catalog;
pub mod clickhouse;
pub mod commands;
pub mod config;
pub mod dictionaries;
pub mod encode;
pub mod events;
pub mod exec;
pub mod pipeline;
pub mod portal;
pub mod schema;
pub mod serve;
pub mod sync;
