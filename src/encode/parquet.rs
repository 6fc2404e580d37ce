//! Streaming Parquet: an `ArrowWriter` over an in-memory buffer that is drained after every
//! write, so a stream of pages becomes a stream of byte chunks and memory stays bounded by
//! one row group.
use arrow_schema::SchemaRef;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::arrow::{arrow_schema, record_batch_with_schema};
use super::error::EncodeError;
use crate::schema::{Cell, ChType, Column};

/// Knobs of the Parquet output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParquetOptions {
    /// Rows per row group. ClickHouse reads row groups in parallel; 10k rows of a wide CRM
    /// table are a few MB, which bounds memory on both sides.
    pub row_group_rows: usize,
    /// Upper bound of a row group's estimated size, for tables with huge text fields.
    pub row_group_bytes: usize,
    /// zstd level (1 is fast and still compresses CRM text well); 0 = Snappy.
    pub zstd_level: i32,
}

impl Default for ParquetOptions {
    fn default() -> Self {
        ParquetOptions {
            row_group_rows: 10_000,
            row_group_bytes: 64 * 1024 * 1024,
            zstd_level: 1,
        }
    }
}

/// Incremental Parquet writer.
pub struct ParquetEncoder {
    writer: ArrowWriter<Vec<u8>>,
    schema: SchemaRef,
    columns: Vec<Column>,
}

impl ParquetEncoder {
    pub fn new(columns: &[Column]) -> Result<Self, EncodeError> {
        Self::with_options(columns, ParquetOptions::default())
    }

    pub fn with_options(columns: &[Column], options: ParquetOptions) -> Result<Self, EncodeError> {
        let compression = if options.zstd_level > 0 {
            Compression::ZSTD(ZstdLevel::try_new(options.zstd_level)?)
        } else {
            Compression::SNAPPY
        };
        // ClickHouse reads these files once, whole (`url()` → INSERT): min/max statistics
        // buy nothing there and cost a comparison per value. Dictionaries pay off for
        // low-cardinality columns only; free text (titles, comments, e-mails) gets none.
        let mut props = WriterProperties::builder()
            .set_compression(compression)
            .set_max_row_group_row_count(Some(options.row_group_rows.max(1)))
            .set_max_row_group_bytes(Some(options.row_group_bytes.max(1)))
            .set_statistics_enabled(EnabledStatistics::None);
        for c in columns {
            if matches!(c.ch_type.strip_nullable().0, ChType::String) {
                props =
                    props.set_column_dictionary_enabled(ColumnPath::from(c.name.as_str()), false);
            }
        }
        let props = props.build();
        let schema = arrow_schema(columns);
        let writer = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props))?;
        Ok(ParquetEncoder {
            writer,
            schema,
            columns: columns.to_vec(),
        })
    }

    /// Adds rows; returns the bytes of every row group completed by them (often empty).
    pub fn write_rows(&mut self, rows: &[Vec<Cell>]) -> Result<Bytes, EncodeError> {
        if !rows.is_empty() {
            let batch = record_batch_with_schema(self.schema.clone(), &self.columns, rows)?;
            self.writer.write(&batch)?;
        }
        Ok(self.drain())
    }

    /// Writes the last row group and the footer; returns the remaining bytes.
    pub fn finish(mut self) -> Result<Bytes, EncodeError> {
        self.writer.finish()?;
        Ok(self.drain())
    }

    /// Rows buffered in the current row group.
    pub fn buffered_rows(&self) -> usize {
        self.writer.in_progress_rows()
    }

    /// Takes what the writer has pushed to the buffer. Only bytes already written leave:
    /// the writer counts offsets itself, so emptying its sink does not disturb the footer.
    fn drain(&mut self) -> Bytes {
        Bytes::from(std::mem::take(self.writer.inner_mut()))
    }
}
