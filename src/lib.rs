//! b24ch: moves Bitrix24 CRM data into ClickHouse.
//!
//! One module per concern:
//! - [`config`]: the TOML config, its validation and secrets from the environment;
//! - [`bitrix`]: the Bitrix24 REST client, the per-portal governor, batch and listing,
//!   and the per-method knowledge table;
//! - [`catalog`]: the entities of a portal and their fields, discovered and diffed;
//! - [`schema`]: the Bitrix24 → ClickHouse type mapping and value normalisation;
//! - [`encode`]: typed rows → Arrow → Parquet / JSONEachRow;
//! - [`serve`]: the HTTP service ClickHouse pulls from;
//! - [`exec`]: executable modes ClickHouse runs itself (table function, UDF, dictionary source);
//! - [`clickhouse`]: generated DDL and `apply`;
//! - [`demo_portal`]: a faithful Bitrix24 REST emulator with generated data;
//! - [`local_clickhouse`]: a real local ClickHouse server from the `chdb-core` wheel.
pub mod bitrix;
pub mod catalog;
pub mod clickhouse;
pub mod commands;
pub mod config;
pub mod demo_portal;
pub mod encode;
pub mod exec;
pub mod local_clickhouse;
pub mod pipeline;
pub mod schema;
pub mod serve;
pub mod sync;
