//! The typed schema: where a Bitrix24 field type becomes a ClickHouse type ([`types`]),
//! and where raw Bitrix24 values become typed cells ([`normalize`]).
pub mod cell;
pub mod field_description;
pub mod json;
pub mod normalize;
pub mod parse;
pub mod types;
pub mod value;

pub use cell::Cell;
pub use field_description::fields_from_description;
pub use normalize::{NormalizeIssue, NormalizedRow, RowNormalizer, ServiceValues, json_text};
pub use types::{
    CURRENCY_SUFFIX, ChType, Column, ColumnSource, MONEY_PRECISION, MONEY_SCALE, ServiceColumn,
    URL_SUFFIX, ValuePart, cursor_column, is_reference, primary_key_column, service_column,
    table_columns,
};
pub use value::ValueStyle;
