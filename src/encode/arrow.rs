//! Typed cells → Arrow arrays, with the Arrow types ClickHouse reads into the table types.
//!
//! `LowCardinality(String)` is plain Utf8: ClickHouse converts on insert, and a dictionary
//! per batch would only cost time here. Arrays never hold nulls (ClickHouse `Array(T)`
//! with a non-Nullable `T`), multifields are `List(Struct{value, value_type})` (a named
//! tuple), `_invalid` is `Map(Utf8, Utf8)`.
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_array::builder::StringBuilder;
use arrow_array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array, ListArray,
    MapArray, StringArray, StructArray, TimestampMicrosecondArray, TimestampMillisecondArray,
    TimestampNanosecondArray, TimestampSecondArray, UInt8Array, UInt64Array,
};
use arrow_buffer::OffsetBuffer;
use arrow_schema::{DataType, Field, FieldRef, Fields, Schema, SchemaRef, TimeUnit};

use super::error::{EncodeError, cell_kind};
use crate::schema::{Cell, ChType, Column};

/// The Arrow schema of a table's rows.
pub fn arrow_schema(columns: &[Column]) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| arrow_field(&c.name, &c.ch_type))
            .collect::<Vec<_>>(),
    ))
}

/// The Arrow field of one column: `Nullable(T)` → nullable field of T.
pub fn arrow_field(name: &str, t: &ChType) -> Field {
    let (inner, nullable) = t.strip_nullable();
    Field::new(name, arrow_type(inner), nullable)
}

fn arrow_type(t: &ChType) -> DataType {
    match t {
        ChType::Bool => DataType::Boolean,
        ChType::UInt8 => DataType::UInt8,
        ChType::Int64 => DataType::Int64,
        ChType::UInt64 => DataType::UInt64,
        ChType::Float64 => DataType::Float64,
        ChType::Decimal { precision, scale } => {
            DataType::Decimal128(*precision, i8::try_from(*scale).unwrap_or(i8::MAX))
        }
        ChType::Date32 => DataType::Date32,
        ChType::DateTime64 { precision } => {
            DataType::Timestamp(time_unit(*precision).0, Some("UTC".into()))
        }
        ChType::String | ChType::LowCardinalityString => DataType::Utf8,
        ChType::Array(elem) => DataType::List(Arc::new(arrow_field("item", elem))),
        ChType::Nullable(inner) => arrow_type(inner),
        ChType::MultiField => DataType::List(Arc::new(Field::new(
            "item",
            DataType::Struct(multifield_fields()),
            false,
        ))),
        ChType::Map => DataType::Map(map_entries_field(), false),
    }
}

/// The Arrow unit of a `DateTime64(precision)` and the factor from cell units to it.
fn time_unit(precision: u8) -> (TimeUnit, i64) {
    let (unit, unit_precision): (TimeUnit, u32) = match precision {
        0 => (TimeUnit::Second, 0),
        1..=3 => (TimeUnit::Millisecond, 3),
        4..=6 => (TimeUnit::Microsecond, 6),
        _ => (TimeUnit::Nanosecond, 9),
    };
    let factor = 10i64.pow(unit_precision.saturating_sub(u32::from(precision.min(9))));
    (unit, factor)
}

fn multifield_fields() -> Fields {
    Fields::from(vec![
        Field::new("value", DataType::Utf8, false),
        Field::new("value_type", DataType::Utf8, false),
    ])
}

fn map_entries_field() -> FieldRef {
    Arc::new(Field::new(
        "entries",
        DataType::Struct(Fields::from(vec![
            Field::new("keys", DataType::Utf8, false),
            Field::new("values", DataType::Utf8, false),
        ])),
        false,
    ))
}

/// One record batch of `rows` (each a cell per column, in column order).
pub fn to_record_batch(columns: &[Column], rows: &[Vec<Cell>]) -> Result<RecordBatch, EncodeError> {
    record_batch_with_schema(arrow_schema(columns), columns, rows)
}

pub(crate) fn record_batch_with_schema(
    schema: SchemaRef,
    columns: &[Column],
    rows: &[Vec<Cell>],
) -> Result<RecordBatch, EncodeError> {
    if let Some((row, r)) = rows
        .iter()
        .enumerate()
        .find(|(_, r)| r.len() != columns.len())
    {
        return Err(EncodeError::RowWidth {
            row,
            got: r.len(),
            expected: columns.len(),
        });
    }
    let mut arrays = Vec::with_capacity(columns.len());
    let mut cells: Vec<&Cell> = Vec::with_capacity(rows.len());
    for (i, column) in columns.iter().enumerate() {
        cells.clear();
        cells.extend(rows.iter().map(|r| &r[i]));
        arrays.push(build_array(&column.ch_type, &cells, &column.name)?);
    }
    Ok(RecordBatch::try_new(schema, arrays)?)
}

/// Builds the array of one column (or of the flattened elements of an array column).
fn build_array(t: &ChType, cells: &[&Cell], column: &str) -> Result<ArrayRef, EncodeError> {
    let (t, _) = t.strip_nullable();
    let mismatch = |c: &Cell| EncodeError::CellType {
        column: column.to_string(),
        expected: t.sql(),
        cell: cell_kind(c),
    };
    macro_rules! primitive {
        ($array:ty, $($pat:pat => $val:expr),+) => {
            cells
                .iter()
                .map(|c| match c {
                    Cell::Null => Ok(None),
                    $($pat => Ok(Some($val)),)+
                    other => Err(mismatch(other)),
                })
                .collect::<Result<$array, EncodeError>>()?
        };
    }
    Ok(match t {
        ChType::Bool => Arc::new(primitive!(BooleanArray, Cell::Bool(b) => *b)),
        ChType::UInt8 => Arc::new(
            primitive!(UInt8Array, Cell::UInt(v) => u8::try_from(*v).unwrap_or(u8::MAX), Cell::Bool(b) => u8::from(*b)),
        ),
        ChType::Int64 => Arc::new(primitive!(Int64Array, Cell::Int(v) => *v)),
        ChType::UInt64 => Arc::new(primitive!(UInt64Array, Cell::UInt(v) => *v)),
        ChType::Float64 => Arc::new(primitive!(Float64Array, Cell::Float(v) => *v)),
        ChType::Decimal { precision, scale } => {
            let scale = i8::try_from(*scale).unwrap_or(i8::MAX);
            Arc::new(
                primitive!(Decimal128Array, Cell::Decimal(v) => *v)
                    .with_precision_and_scale(*precision, scale)?,
            )
        }
        ChType::Date32 => Arc::new(primitive!(Date32Array, Cell::Date(d) => *d)),
        ChType::DateTime64 { precision } => timestamp_array(*precision, cells, &mismatch)?,
        ChType::String | ChType::LowCardinalityString => {
            Arc::new(primitive!(StringArray, Cell::Str(s) => s.as_str()))
        }
        ChType::Array(elem) => list_array(elem, cells, column, &mismatch)?,
        ChType::MultiField => pairs_list(cells, &mismatch, PairsShape::MultiField)?,
        ChType::Map => pairs_list(cells, &mismatch, PairsShape::Map)?,
        ChType::Nullable(_) => return Err(mismatch(&Cell::Null)),
    })
}

fn timestamp_array(
    precision: u8,
    cells: &[&Cell],
    mismatch: &dyn Fn(&Cell) -> EncodeError,
) -> Result<ArrayRef, EncodeError> {
    let (unit, factor) = time_unit(precision);
    let values = cells
        .iter()
        .map(|c| match c {
            Cell::Null => Ok(None),
            Cell::DateTime(v) => Ok(Some(v.saturating_mul(factor))),
            other => Err(mismatch(other)),
        })
        .collect::<Result<Vec<Option<i64>>, EncodeError>>()?;
    Ok(match unit {
        TimeUnit::Second => Arc::new(TimestampSecondArray::from(values).with_timezone("UTC")),
        TimeUnit::Millisecond => {
            Arc::new(TimestampMillisecondArray::from(values).with_timezone("UTC"))
        }
        TimeUnit::Microsecond => {
            Arc::new(TimestampMicrosecondArray::from(values).with_timezone("UTC"))
        }
        TimeUnit::Nanosecond => {
            Arc::new(TimestampNanosecondArray::from(values).with_timezone("UTC"))
        }
    })
}

/// A list column; a Null cell is an empty list (array columns are not Nullable).
fn list_array(
    elem: &ChType,
    cells: &[&Cell],
    column: &str,
    mismatch: &dyn Fn(&Cell) -> EncodeError,
) -> Result<ArrayRef, EncodeError> {
    let mut offsets = Vec::with_capacity(cells.len() + 1);
    let mut children: Vec<&Cell> = Vec::new();
    offsets.push(0i32);
    for cell in cells {
        match cell {
            Cell::Array(list) => children.extend(list.iter()),
            Cell::Null => {}
            other => return Err(mismatch(other)),
        }
        offsets.push(i32::try_from(children.len()).map_err(|_| too_many(column))?);
    }
    let values = build_array(elem, &children, column)?;
    let field = Arc::new(arrow_field("item", elem));
    Ok(Arc::new(ListArray::try_new(
        field,
        OffsetBuffer::new(offsets.into()),
        values,
        None,
    )?))
}

fn too_many(column: &str) -> EncodeError {
    EncodeError::Value {
        column: column.to_string(),
        message: "more than 2^31 list elements in one batch".into(),
    }
}

fn pairs_of(cell: &Cell, shape: PairsShape) -> Option<&[(String, String)]> {
    match (cell, shape) {
        (Cell::Pairs(p), PairsShape::MultiField) => Some(p.as_slice()),
        (Cell::Map(p), PairsShape::Map) => Some(p.as_slice()),
        _ => None,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum PairsShape {
    MultiField,
    Map,
}

/// `List(Struct{value, value_type})` from `Cell::Pairs`, or `Map(Utf8, Utf8)` from `Cell::Map`.
fn pairs_list(
    cells: &[&Cell],
    mismatch: &dyn Fn(&Cell) -> EncodeError,
    shape: PairsShape,
) -> Result<ArrayRef, EncodeError> {
    let mut offsets = Vec::with_capacity(cells.len() + 1);
    offsets.push(0i32);
    let mut first = StringBuilder::new();
    let mut second = StringBuilder::new();
    let mut n = 0usize;
    for cell in cells {
        match pairs_of(cell, shape) {
            Some(pairs) => {
                for (a, b) in pairs {
                    first.append_value(a);
                    second.append_value(b);
                }
                n += pairs.len();
            }
            None if cell.is_null() => {}
            None => return Err(mismatch(cell)),
        }
        offsets.push(i32::try_from(n).map_err(|_| too_many("pairs"))?);
    }
    let arrays: Vec<ArrayRef> = vec![Arc::new(first.finish()), Arc::new(second.finish())];
    let offsets = OffsetBuffer::new(offsets.into());
    Ok(match shape {
        PairsShape::MultiField => {
            let entries = StructArray::try_new(multifield_fields(), arrays, None)?;
            let field = Arc::new(Field::new(
                "item",
                DataType::Struct(multifield_fields()),
                false,
            ));
            Arc::new(ListArray::try_new(field, offsets, Arc::new(entries), None)?)
        }
        PairsShape::Map => {
            let entries_field = map_entries_field();
            let DataType::Struct(fields) = entries_field.data_type() else {
                return Err(mismatch(&Cell::Null));
            };
            let entries = StructArray::try_new(fields.clone(), arrays, None)?;
            Arc::new(MapArray::try_new(
                entries_field,
                offsets,
                entries,
                None,
                false,
            )?)
        }
    })
}
