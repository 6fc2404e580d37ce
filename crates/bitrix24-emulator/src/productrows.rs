//! Product rows of CRM items (`crm.item.productrow.*`, EN
//! `api-reference/crm/universal/product-rows/`): one lazy table over every owner type that has
//! products (deals, leads, quotes, invoices, smart processes). Generated rows are laid out per
//! owner (`ProductRowSegment`); rows added later carry their owner as overrides. Deleting an
//! owner deletes its rows (as the portal does), and changing an owner's rows through the
//! control API (`control/product_rows.rs`) touches the owner's modification time
//! (`crm.item.productrow.*` saves the item: its amount is recalculated).

use super::crm_docs;
use super::fields::fd;
use super::model::{
    FieldDef, Gen, Kind, OwnerPart, PortalData, ProductRowSegment, TableKind, Val, modify_field,
};

/// The portal table of product rows.
pub(crate) const TABLE: &str = "productrow";

/// Fields `crm.item.productrow.fields` does not describe although rows carry them (EN
/// crm-item-productrow-fields.md: "the response does not contain the priceAccount and xmlId
/// fields").
pub(crate) const UNDESCRIBED: &[&str] = &["PRICE_ACCOUNT", "XML_ID"];

/// Short owner-type code (`crm.enum.ownertype` `SYMBOL_CODE_SHORT`) of an entity type.
pub(crate) fn short_code(etid: u32) -> String {
    match etid {
        1 => "L".into(),
        2 => "D".into(),
        crm_docs::QUOTE => "Q".into(),
        crm_docs::SMART_INVOICE => "SI".into(),
        n => format!("T{n:x}"),
    }
}

/// The entity type of a short owner-type code, if it is one that has product rows.
pub(crate) fn etid_of_short(code: &str) -> Option<u32> {
    match code {
        "L" => Some(1),
        "D" => Some(2),
        "Q" => Some(crm_docs::QUOTE),
        "SI" => Some(crm_docs::SMART_INVOICE),
        c => {
            let hex = c.strip_prefix('T')?;
            u32::from_str_radix(hex, 16).ok().filter(|n| *n >= 128)
        }
    }
}

fn fields() -> Vec<FieldDef> {
    let int = |code: &str, genr: Gen, title: &str| fd(code, "integer", Kind::Int, genr, title);
    let money = |code: &str, max: i64, title: &str| {
        fd(code, "double", Kind::Amount, Gen::Amount(max), title)
    };
    vec![
        int("ID", Gen::Id, "ID").ro(),
        int("OWNER_ID", Gen::ProductRowOwner(OwnerPart::Id), "Owner ID").immutable(),
        fd(
            "OWNER_TYPE",
            "string",
            Kind::Str,
            Gen::ProductRowOwner(OwnerPart::Type),
            "Owner Type",
        )
        .immutable(),
        int("PRODUCT_ID", Gen::IntRange(0, 40, 0), "Product"),
        fd(
            "PRODUCT_NAME",
            "string",
            Kind::Str,
            Gen::Word(
                &[
                    "iPhone 14 «Pro»",
                    "Консультация, 1 ч",
                    "Widget \"XL\" 'quoted'",
                    "Доставка 🚚",
                    "",
                ],
                0,
            ),
            "Product Name",
        ),
        money("PRICE", 100_000, "Price"),
        money("PRICE_ACCOUNT", 100_000, "Price in account currency"),
        money("PRICE_EXCLUSIVE", 100_000, "Discounted price excluding tax").ro(),
        money("PRICE_NETTO", 100_000, "PRICE_NETTO").ro(),
        money("PRICE_BRUTTO", 100_000, "PRICE_BRUTTO").ro(),
        fd(
            "QUANTITY",
            "double",
            Kind::Float,
            Gen::IntRange(1, 12, 0),
            "Quantity",
        ),
        int("DISCOUNT_TYPE_ID", Gen::IntRange(1, 2, 0), "Discount Type"),
        fd(
            "DISCOUNT_RATE",
            "double",
            Kind::Float,
            Gen::IntRange(0, 30, 0),
            "Discount Amount",
        ),
        money("DISCOUNT_SUM", 5_000, "Discount Total"),
        fd(
            "TAX_RATE",
            "double",
            Kind::Float,
            Gen::IntRange(0, 20, 40),
            "Tax",
        ),
        fd(
            "TAX_NAME",
            "string",
            Kind::Str,
            Gen::Word(&["НДС 20%", "VAT 10", "No VAT"], 10),
            "TAX_NAME",
        ),
        fd(
            "TAX_INCLUDED",
            "char",
            Kind::YesNo,
            Gen::YesNo(50),
            "Tax included in price",
        ),
        fd(
            "CUSTOMIZED",
            "char",
            Kind::YesNo,
            Gen::YesNo(80),
            "Modified",
        ),
        int(
            "MEASURE_CODE",
            Gen::IntRange(796, 798, 0),
            "Unit of Measure Code",
        ),
        fd(
            "MEASURE_NAME",
            "string",
            Kind::Str,
            Gen::Word(&["шт", "pcs", "m"], 0),
            "Unit of Measure",
        ),
        int("SORT", Gen::IntRange(1, 5, 0), "Sorting"),
        fd(
            "XML_ID",
            "string",
            Kind::Str,
            Gen::Word(&["sale_basket_8147", "1c:guid-7"], 50),
            "XML_ID",
        ),
        int("TYPE", Gen::IntRange(1, 7, 0), "TYPE").ro(),
        int("STORE_ID", Gen::IntRange(1, 20, 50), "STORE_ID").ro(),
        // Not served by any method (no crm.item name): ground truth for connectors that copy
        // the owner's modification time into its rows.
        fd(
            "OWNER_UPDATED_TIME",
            "datetime",
            Kind::DateTime,
            Gen::ProductRowOwner(OwnerPart::Updated),
            "Owner modified at",
        )
        .no_item(),
    ]
}

impl PortalData {
    /// The product-row table: three rows per deal, two per quote and invoice, one per lead
    /// and smart-process item (the generated owners; rows added later are appended).
    pub(crate) fn add_product_rows(&mut self) {
        let mut owners: Vec<(u32, u64)> = vec![
            (2, 3),
            (1, 1),
            (crm_docs::QUOTE, 2),
            (crm_docs::SMART_INVOICE, 2),
        ];
        owners.extend(self.types.iter().map(|t| (t.entity_type_id, 1)));
        let mut next = 1u64;
        let mut segments = Vec::new();
        for (etid, per_owner) in owners {
            let table = PortalData::table_name_for(etid);
            let Some(n) = self.tables.get(&table).map(|t| t.spread) else {
                continue;
            };
            segments.push(ProductRowSegment {
                owner_table: table,
                entity_type_id: etid,
                short: short_code(etid),
                first_id: next,
                owners: n,
                per_owner,
            });
            next += n * per_owner;
        }
        self.productrow_segments = segments;
        self.insert_lazy(TABLE, TableKind::ProductRow, None, fields(), next - 1);
    }

    /// Ids of the product rows of one owner, ascending.
    pub(crate) fn product_rows_of(&self, etid: u32, owner_id: u64) -> Vec<u64> {
        let Some(t) = self.tables.get(TABLE) else {
            return Vec::new();
        };
        let mut ids: Vec<u64> = self
            .productrow_segments
            .iter()
            .filter(|s| s.entity_type_id == etid && owner_id >= 1 && owner_id <= s.owners)
            .flat_map(|s| {
                let first = s.first_id + (owner_id - 1) * s.per_owner;
                first..first + s.per_owner
            })
            .filter(|id| t.exists(*id))
            .collect();
        let short = short_code(etid);
        let generated = t.spread;
        ids.extend((generated + 1..=t.max_id).filter(|id| {
            t.exists(*id)
                && owner_value(self, *id, OwnerPart::Type) == Val::Str(short.clone())
                && owner_value(self, *id, OwnerPart::Id) == Val::Int(owner_id as i64)
        }));
        ids
    }

    /// Owners deleted from `table` lose their product rows.
    pub(crate) fn drop_product_rows_of(&mut self, table: &str, owner_ids: &[u64]) {
        let Some(etid) = self.tables.get(table).and_then(|t| t.entity_type_id) else {
            return;
        };
        let doomed: Vec<u64> = owner_ids
            .iter()
            .flat_map(|o| self.product_rows_of(etid, *o))
            .collect();
        if let Some(t) = self.tables.get_mut(TABLE) {
            for id in doomed {
                t.delete(id);
            }
        }
    }
}

/// The owner part of product row `id`: an override (rows added later), else its segment.
pub(crate) fn owner_value(data: &PortalData, id: u64, part: OwnerPart) -> Val {
    let code = match part {
        OwnerPart::Id => "OWNER_ID",
        OwnerPart::Type => "OWNER_TYPE",
        OwnerPart::Updated => return owner_modified(data, id),
    };
    if let Some(v) = data
        .tables
        .get(TABLE)
        .and_then(|t| t.overrides.get(&id))
        .and_then(|o| o.iter().find(|(c, _)| c == code))
    {
        return v.1.clone();
    }
    let Some(s) = data
        .productrow_segments
        .iter()
        .find(|s| id >= s.first_id && id < s.first_id + s.owners * s.per_owner)
    else {
        return Val::Null;
    };
    match part {
        OwnerPart::Id => Val::Int(((id - s.first_id) / s.per_owner + 1) as i64),
        OwnerPart::Type => Val::Str(s.short.clone()),
        OwnerPart::Updated => Val::Null,
    }
}

/// The current modification time of a product row's owner.
fn owner_modified(data: &PortalData, id: u64) -> Val {
    let owner = match (
        owner_value(data, id, OwnerPart::Type),
        owner_value(data, id, OwnerPart::Id),
    ) {
        (Val::Str(short), Val::Int(o)) => etid_of_short(&short).zip(u64::try_from(o).ok()),
        _ => None,
    };
    let Some((etid, owner_id)) = owner else {
        return Val::Null;
    };
    let Some(t) = data.table_for_etid(etid).filter(|t| t.exists(owner_id)) else {
        return Val::Null;
    };
    match modify_field(t).and_then(|m| t.field(m)) {
        Some(f) => data.value(t, owner_id, f),
        None => Val::Null,
    }
}
