//! Typed rows → bytes: Arrow record batches, streamed Parquet, and JSONEachRow.
//!
//! Both encoders have the same shape: `write_rows` takes one page of normalised rows and
//! returns the bytes ready to send (possibly empty), `finish` returns the tail. Memory is
//! bounded by one Parquet row group (or one page for JSONEachRow), not by the row count.
mod arrow;
mod error;
mod json;
mod parquet;
pub mod tsv;

pub use self::arrow::{arrow_field, arrow_schema, to_record_batch};
pub use self::error::EncodeError;
pub use self::json::JsonEachRowEncoder;
pub use self::parquet::{ParquetEncoder, ParquetOptions};

use bytes::Bytes;

use crate::schema::{Cell, Column};

/// Output formats ClickHouse pulls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Parquet,
    JsonEachRow,
}

impl Format {
    /// The ClickHouse format name (`url(…, 'Parquet')`).
    pub fn clickhouse_name(self) -> &'static str {
        match self {
            Format::Parquet => "Parquet",
            Format::JsonEachRow => "JSONEachRow",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Parquet => "application/vnd.apache.parquet",
            Format::JsonEachRow => "application/x-ndjson",
        }
    }

    /// Parses `Parquet` / `JSONEachRow` (case-insensitive).
    pub fn parse(name: &str) -> Option<Format> {
        if name.eq_ignore_ascii_case("parquet") {
            Some(Format::Parquet)
        } else if name.eq_ignore_ascii_case("jsoneachrow") {
            Some(Format::JsonEachRow)
        } else {
            None
        }
    }
}

/// Either encoder, for callers that pick the format at run time.
pub enum RowEncoder {
    Parquet(Box<ParquetEncoder>),
    JsonEachRow(JsonEachRowEncoder),
}

impl RowEncoder {
    pub fn new(format: Format, columns: &[Column]) -> Result<Self, EncodeError> {
        Ok(match format {
            Format::Parquet => RowEncoder::Parquet(Box::new(ParquetEncoder::new(columns)?)),
            Format::JsonEachRow => RowEncoder::JsonEachRow(JsonEachRowEncoder::new(columns)),
        })
    }

    /// Encodes a page of rows; returns the bytes ready to send (may be empty).
    pub fn write_rows(&mut self, rows: &[Vec<Cell>]) -> Result<Bytes, EncodeError> {
        match self {
            RowEncoder::Parquet(e) => e.write_rows(rows),
            RowEncoder::JsonEachRow(e) => e.write_rows(rows),
        }
    }

    /// Ends the stream; returns the remaining bytes (the Parquet footer).
    pub fn finish(self) -> Result<Bytes, EncodeError> {
        match self {
            RowEncoder::Parquet(e) => e.finish(),
            RowEncoder::JsonEachRow(e) => e.finish(),
        }
    }
}
