//! Typed values of one row, the hand-off between normalisation and encoding.

/// One typed value. Its meaning is fixed by the column's [`super::ChType`].
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Bool(bool),
    Int(i64),
    /// UInt64 and UInt8 columns.
    UInt(u64),
    Float(f64),
    /// Unscaled value: `19999.99` in a `Decimal(18,2)` column is `1999999`.
    Decimal(i128),
    /// Days since 1970-01-01.
    Date(i32),
    /// Units of 10^-precision seconds since the Unix epoch, UTC (seconds for precision 0,
    /// milliseconds for `dt_inserted`).
    DateTime(i64),
    Str(String),
    Array(Vec<Cell>),
    /// `crm_multifield`: `(value, value_type)`.
    Pairs(Vec<(String, String)>),
    /// `Map(String, String)`.
    Map(Vec<(String, String)>),
}

impl Cell {
    pub fn is_null(&self) -> bool {
        matches!(self, Cell::Null)
    }
}
