//! Rows into a ClickHouse table as a series of INSERTs, each one complete Parquet file sent
//! whole. An INSERT is never held open while b24ch waits for the portal: ClickHouse closes a
//! request whose body stays idle for `http_receive_timeout` (30 s by default), and a wait for
//! the portal's limits can last minutes (docs/architecture.md, "Writing rows").
use super::SyncError;
use crate::clickhouse::Connection;
use crate::encode::{Format, RowEncoder};
use crate::schema::{Cell, Column};

/// Rows per INSERT: bounds the memory of a load (the encoder holds a row group, 10,000 rows,
/// before it yields bytes).
const CHUNK_ROWS: u64 = 50_000;
/// Encoded bytes buffered before they go as one INSERT, whatever the row count.
const CHUNK_BYTES: usize = 64 << 20;

pub struct ChunkedInsert<'a> {
    conn: &'a Connection,
    table: &'a str,
    columns: &'a [Column],
    /// The file being written; `None` until a row arrives after the last INSERT.
    encoder: Option<RowEncoder>,
    buffer: Vec<u8>,
    chunk_rows: u64,
    /// Rows sent in INSERTs that completed.
    pub sent: u64,
    pending: u64,
}

impl<'a> ChunkedInsert<'a> {
    /// Into `table` (quoted, qualified), rows of `columns`.
    pub fn new(conn: &'a Connection, table: &'a str, columns: &'a [Column]) -> Self {
        Self {
            conn,
            table,
            columns,
            encoder: None,
            buffer: Vec::new(),
            chunk_rows: CHUNK_ROWS,
            sent: 0,
            pending: 0,
        }
    }

    /// Sends an INSERT whenever `rows` rows are buffered (50,000 by default).
    pub fn with_chunk_rows(mut self, rows: u64) -> Self {
        self.chunk_rows = rows;
        self
    }

    /// Encodes the rows; sends an INSERT once a chunk's rows (or bytes) are buffered.
    pub async fn write(&mut self, rows: &[Vec<Cell>]) -> Result<(), SyncError> {
        if rows.is_empty() {
            return Ok(());
        }
        let encoder = match &mut self.encoder {
            Some(e) => e,
            None => self
                .encoder
                .insert(RowEncoder::new(Format::Parquet, self.columns)?),
        };
        self.buffer.extend_from_slice(&encoder.write_rows(rows)?);
        self.pending += rows.len() as u64;
        if self.pending >= self.chunk_rows || self.buffer.len() >= CHUNK_BYTES {
            self.flush().await?;
        }
        Ok(())
    }

    /// Sends the rows buffered so far as one INSERT (none if there are none). Call it last:
    /// rows still buffered when this value is dropped are not written.
    pub async fn flush(&mut self) -> Result<(), SyncError> {
        let Some(encoder) = self.encoder.take() else {
            return Ok(());
        };
        self.buffer.extend_from_slice(&encoder.finish()?);
        let body = bytes::Bytes::from(std::mem::take(&mut self.buffer));
        let err = |e: clickhouse::error::Error| SyncError::Insert {
            table: self.table.to_string(),
            message: self.conn.insert_error(&e),
        };
        let mut insert = self
            .conn
            .insert_formatted(&format!("INSERT INTO {} FORMAT Parquet", self.table));
        insert.send(body).await.map_err(err)?;
        insert.end().await.map_err(err)?;
        self.sent += std::mem::take(&mut self.pending);
        Ok(())
    }
}
