//! The ClickHouse side: generated DDL (tables, refreshable MVs, views, dictionaries) and `apply`.
pub mod ddl;
pub mod plan;
pub mod quote;
