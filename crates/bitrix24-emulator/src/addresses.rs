//! Addresses (`crm.address.list|fields`, EN api-reference/crm/requisites/addresses/): a legacy
//! list with upper-case codes and no `ID`. A row is identified by its owner and its type:
//! `ENTITY_TYPE_ID` (8 a requisite, 1 a lead), `ENTITY_ID`, `TYPE_ID` (`crm.enum.addresstype`:
//! one address of each type per owner). No modification time. `ANCHOR_TYPE_ID`/`ANCHOR_ID`
//! name the requisite's company or contact (the lead itself for a lead's address).
//!
//! Generated row `n` belongs to requisite `r = (n-1)/2 + 1` (two addresses each, of two
//! different types) or, every fifth `r`, to lead `r/5`: the triple is unique for every `n`,
//! rows added later included.

use super::fields::fd;
use super::model::PortalData;
use super::model::{AddressPart, FieldDef, Gen, Kind, LegacyVis, TableKind, Val};
use super::requisites::REQUISITES;

/// The portal table.
pub(crate) const TABLE: &str = "address";
/// Address types of `crm.enum.addresstype` (actual, registration, legal, beneficiary).
const TYPES: [i64; 4] = [1, 4, 6, 9];
const PER_REQUISITE: u64 = 2;
const LEAD: i64 = 1;
const REQUISITE: i64 = 8;

fn fields() -> Vec<FieldDef> {
    let int = |code: &str, genr: Gen, title: &str| fd(code, "integer", Kind::Int, genr, title);
    let text = |code: &str, genr: Gen, title: &str| fd(code, "string", Kind::Str, genr, title);
    vec![
        int("TYPE_ID", Gen::Address(AddressPart::Type), "TYPE_ID")
            .req()
            .immutable(),
        int(
            "ENTITY_TYPE_ID",
            Gen::Address(AddressPart::EntityType),
            "ENTITY_TYPE_ID",
        )
        .req()
        .immutable(),
        int(
            "ENTITY_ID",
            Gen::Address(AddressPart::EntityId),
            "ENTITY_ID",
        )
        .req()
        .immutable(),
        text(
            "ADDRESS_1",
            Gen::Word(
                &["Московский пр-т, 261", "Main St. \"5\"", "O'Hara Rd 🚚", ""],
                10,
            ),
            "Street, house, building, structure",
        ),
        text(
            "ADDRESS_2",
            Gen::Word(&["701", "кв. 5", ""], 30),
            "Apartment / office",
        ),
        text(
            "CITY",
            Gen::Word(&["Калининград", "Los Angeles", ""], 10),
            "City",
        ),
        text(
            "POSTAL_CODE",
            Gen::Word(&["625003", "101000", ""], 20),
            "Postal code",
        ),
        text(
            "REGION",
            Gen::Word(&["California", "Московская обл."], 40),
            "Region",
        ),
        text("PROVINCE", Gen::Word(&["California", ""], 40), "Province"),
        text("COUNTRY", Gen::Word(&["USA", "Россия", ""], 10), "Country"),
        // "Not used, retained for backward compatibility" (null in the docs' answers).
        text("COUNTRY_CODE", Gen::Word(&["RU", ""], 80), "COUNTRY_CODE"),
        int(
            "LOC_ADDR_ID",
            Gen::IntRange(0, 900, 20),
            "Location address identifier",
        ),
        int(
            "ANCHOR_TYPE_ID",
            Gen::Address(AddressPart::AnchorType),
            "ANCHOR_TYPE_ID",
        )
        .ro(),
        int(
            "ANCHOR_ID",
            Gen::Address(AddressPart::AnchorId),
            "ANCHOR_ID",
        )
        .ro(),
        // Served by no method: ground truth for a connector that keys a row by its owner and
        // type (b24ch's `ADDRESS_KEY`, `ENTITY_TYPE_ID:ENTITY_ID:TYPE_ID`).
        text("ADDRESS_KEY", Gen::Address(AddressPart::Key), "Address key")
            .vis(LegacyVis::None)
            .no_item(),
    ]
}

/// The owner `(ENTITY_TYPE_ID, ENTITY_ID)` and `TYPE_ID` of generated row `n`.
fn key_of(n: u64) -> (i64, i64, i64) {
    let r = (n.max(1) - 1) / PER_REQUISITE + 1;
    let slot = (n.max(1) - 1) % PER_REQUISITE;
    let type_id = TYPES[((r + slot) % TYPES.len() as u64) as usize];
    if r.is_multiple_of(5) {
        (LEAD, (r / 5) as i64, type_id)
    } else {
        (REQUISITE, r as i64, type_id)
    }
}

/// One part of address `id`'s identity or anchor.
pub(crate) fn value(data: &PortalData, id: u64, part: AddressPart) -> Val {
    let (etid, owner, type_id) = key_of(id);
    match part {
        AddressPart::Type => Val::Int(type_id),
        AddressPart::EntityType => Val::Int(etid),
        AddressPart::EntityId => Val::Int(owner),
        AddressPart::Key => Val::Str(format!("{etid}:{owner}:{type_id}")),
        AddressPart::AnchorType | AddressPart::AnchorId if etid == LEAD => {
            Val::Int(if part == AddressPart::AnchorType {
                LEAD
            } else {
                owner
            })
        }
        AddressPart::AnchorType => requisite_owner(data, owner, "ENTITY_TYPE_ID"),
        AddressPart::AnchorId => requisite_owner(data, owner, "ENTITY_ID"),
    }
}

/// The company or contact of a requisite (null for a requisite the portal does not have).
fn requisite_owner(data: &PortalData, requisite: i64, code: &str) -> Val {
    let Some(t) = data.tables.get(REQUISITES) else {
        return Val::Null;
    };
    let id = u64::try_from(requisite).unwrap_or(0);
    match (t.exists(id), t.field(code)) {
        (true, Some(f)) => data.value(t, id, f),
        _ => Val::Null,
    }
}

impl PortalData {
    /// Addresses of requisites and leads.
    pub(crate) fn add_addresses(&mut self, n: u64) {
        self.insert_lazy(TABLE, TableKind::Address, None, fields(), n);
    }
}
