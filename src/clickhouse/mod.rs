//! The ClickHouse side: generated DDL (tables, refreshable MVs, views, dictionaries),
//! the connection, and `apply` (the schema autopilot).
pub mod apply;
pub mod connection;
pub mod ddl;
mod error;
pub mod history;
pub mod plan;
pub mod quote;
mod tls;

pub use connection::Connection;
pub use error::ClickHouseError;
