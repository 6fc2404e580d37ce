//! The typed schema: where a Bitrix24 field type becomes a ClickHouse type ([`types`]),
//! and where raw Bitrix24 values become typed cells ([`normalize`]).
pub mod cell;
pub mod json;
pub mod normalize;
pub mod parse;
pub mod types;
pub use crate::bitrix::methods::ValueStyle;
pub use cell::Cell;
pub use normalize::{NormalizeIssue, NormalizedRow, RowNormalizer, ServiceValues, json_text};
pub use types::{
    CURRENCY_SUFFIX, ChType, Column, ColumnSource, MONEY_PRECISION, MONEY_SCALE, ServiceColumn,
    URL_SUFFIX, ValuePart, WATERMARK_ID, cursor_column, is_reference, now_ms, primary_key_column,
    service_column, table_columns,
};
