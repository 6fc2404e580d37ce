//! Encoding errors. They mean a bug (cells that do not match the schema) or an I/O-level
//! failure inside the Parquet writer; a stream that hits one must be aborted, not ended.
use arrow_schema::ArrowError;
use parquet::errors::ParquetError;

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("row {row} has {got} cells but the table has {expected} columns")]
    RowWidth {
        row: usize,
        got: usize,
        expected: usize,
    },
    #[error("column {column}: a {cell} cell does not fit {expected}")]
    CellType {
        column: String,
        expected: String,
        cell: &'static str,
    },
    #[error("column {column}: {message}")]
    Value { column: String, message: String },
    #[error("arrow: {0}")]
    Arrow(#[from] ArrowError),
    #[error("parquet: {0}")]
    Parquet(#[from] ParquetError),
}

/// Short name of a cell variant, for error messages (never the value: it may be personal data).
pub(crate) fn cell_kind(cell: &crate::schema::Cell) -> &'static str {
    use crate::schema::Cell;
    match cell {
        Cell::Null => "Null",
        Cell::Bool(_) => "Bool",
        Cell::Int(_) => "Int",
        Cell::UInt(_) => "UInt",
        Cell::Float(_) => "Float",
        Cell::Decimal(_) => "Decimal",
        Cell::Date(_) => "Date",
        Cell::DateTime(_) => "DateTime",
        Cell::Str(_) => "Str",
        Cell::Array(_) => "Array",
        Cell::Pairs(_) => "Pairs",
        Cell::Map(_) => "Map",
    }
}
