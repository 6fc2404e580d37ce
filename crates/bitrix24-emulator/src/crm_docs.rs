//! Quotes (estimates, `entityTypeId` 7) and new-type invoices (smart invoices, 31): predefined
//! `crm.item` types with fixed field sets (EN `api-reference/crm/universal/object-fields.md`,
//! sections "Estimate" and "Invoice"). Both are listed with `crm.item.list` like smart
//! processes; `crm.stagehistory.list` serves invoices (31) and refuses quotes (its documented
//! types are 1, 2, 5, 31 and smart processes: EN `crm-stage-history-list.md`).

use super::fields::{fd, history_fields, uf_specs};
use super::json_out::J;
use super::model::PortalData;
use super::model::{FieldDef, Gen, Kind, LegacyVis, TableKind};

/// `entityTypeId` of quotes.
pub(crate) const QUOTE: u32 = 7;
/// `entityTypeId` of new-type invoices.
pub(crate) const SMART_INVOICE: u32 = 31;

/// Portal table of a predefined document type, if `etid` is one.
pub(crate) fn table_name(etid: u32) -> Option<&'static str> {
    match etid {
        QUOTE => Some("quote"),
        SMART_INVOICE => Some("smart_invoice"),
        _ => None,
    }
}

/// The `crm.status` directory (`ENTITY_ID`) of a document type's stages.
pub(crate) fn stage_entity(etid: u32, cat: i64) -> Option<String> {
    match etid {
        QUOTE => Some("QUOTE_STATUS".into()),
        SMART_INVOICE => Some(format!("SMART_INVOICE_STAGE_{cat}")),
        _ => None,
    }
}

impl PortalData {
    /// Adds the quote and smart-invoice tables (with their stages, the invoices' default
    /// pipeline and stage history, and one user field of every type each).
    pub(crate) fn add_quotes_and_invoices(&mut self, quotes: u64, invoices: u64) {
        self.add_stages(
            "QUOTE_STATUS",
            None,
            &[
                ("DRAFT", "Новое", "P"),
                ("SENT", "Отправлено клиенту", "P"),
                ("APPROVED", "Принято", "S"),
                ("DECLAINED", "Отклонено", "F"),
            ],
        );
        if invoices > 0 {
            self.add_invoice_pipeline();
        }
        self.rebuild_caches();
        for (etid, n, fields) in [
            (QUOTE, quotes, quote_fields()),
            (SMART_INVOICE, invoices, smart_invoice_fields()),
        ] {
            // None of a type: a portal (older on-premise) without it, whose crm.item methods
            // answer NOT_FOUND for the entityTypeId.
            let Some(name) = table_name(etid).filter(|_| n > 0) else {
                continue;
            };
            self.insert_lazy(name, TableKind::Dynamic, Some(etid), fields, n);
            for (suffix, user_type, multiple, label, genr) in uf_specs() {
                let code = uf_code(etid, self.next_uf_id + 2);
                self.add_user_field(name, suffix, user_type, multiple, label, genr, Some(code));
            }
        }
        if invoices == 0 {
            return;
        }
        self.insert_lazy(
            &PortalData::history_table_for(SMART_INVOICE),
            TableKind::StageHistory,
            Some(SMART_INVOICE),
            history_fields(false),
            invoices * 2,
        );
    }

    /// The invoices' default pipeline and its stages.
    fn add_invoice_pipeline(&mut self) {
        let cat = self.next_category();
        self.push_category(SMART_INVOICE, cat, "Счета", true);
        let pre = format!("DT{SMART_INVOICE}_{cat}:");
        let stages: Vec<(String, &str, &str)> = [
            ("N", "Новый", "P"),
            ("S", "Отправлен клиенту", "P"),
            ("P", "Оплачен", "S"),
            ("D", "Не оплачен", "F"),
        ]
        .iter()
        .map(|(s, n, m)| (format!("{pre}{s}"), *n, *m))
        .collect();
        let borrowed: Vec<(&str, &str, &str)> = stages
            .iter()
            .map(|(s, n, m)| (s.as_str(), *n, *m))
            .collect();
        self.add_stages(&format!("SMART_INVOICE_STAGE_{cat}"), Some(cat), &borrowed);
    }
}

/// User-field codes as the portal names them: quotes `UF_CRM_<ts>` (their user-field entity is
/// `CRM_QUOTE` with the CRM prefix), invoices `UF_CRM_SMART_INVOICE_<ts>`.
fn uf_code(etid: u32, uf_id: u64) -> String {
    let ts = 1_731_244_000_000u64 + uf_id;
    match etid {
        SMART_INVOICE => format!("UF_CRM_SMART_INVOICE_{ts}"),
        _ => format!("UF_CRM_{ts}"),
    }
}

fn item_only(mut f: Vec<FieldDef>) -> Vec<FieldDef> {
    for x in f.iter_mut() {
        x.legacy = LegacyVis::None;
    }
    f
}

fn common(title_prefix: &'static str, stage_type: &str) -> Vec<FieldDef> {
    vec![
        fd("ID", "integer", Kind::Int, Gen::Id, "ID").ro(),
        fd(
            "TITLE",
            "string",
            Kind::Str,
            Gen::Title(title_prefix),
            "Name",
        ),
        fd(
            "ASSIGNED_BY_ID",
            "user",
            Kind::Int,
            Gen::User,
            "Assigned to",
        ),
        fd("CREATED_BY", "user", Kind::Int, Gen::User, "Created by").ro(),
        fd("UPDATED_BY", "user", Kind::Int, Gen::User, "Updated by").ro(),
        fd(
            "CREATED_TIME",
            "datetime",
            Kind::DateTime,
            Gen::Created,
            "Created on",
        )
        .ro(),
        fd(
            "UPDATED_TIME",
            "datetime",
            Kind::DateTime,
            Gen::Modified,
            "Updated on",
        )
        .ro(),
        fd(
            "OPENED",
            "boolean",
            Kind::YesNo,
            Gen::YesNo(70),
            "Available to everyone",
        ),
        fd("STAGE_ID", "crm_status", Kind::Str, Gen::Stage, "Stage").status(stage_type),
        fd(
            "BEGINDATE",
            "date",
            Kind::Date,
            Gen::DateAround(0),
            "Start date",
        ),
        fd(
            "CLOSEDATE",
            "date",
            Kind::Date,
            Gen::DateAround(30),
            "End date",
        ),
        fd(
            "COMPANY_ID",
            "crm_company",
            Kind::Int,
            Gen::Company,
            "Company",
        )
        .settings(J::obj([("parentEntityTypeId", J::Int(4))])),
        fd(
            "CONTACT_ID",
            "crm_contact",
            Kind::Int,
            Gen::FirstContact,
            "Contact",
        )
        .deprecated(),
        fd(
            "CONTACT_IDS",
            "crm_contact",
            Kind::Int,
            Gen::ContactIds,
            "Contacts",
        )
        .multi(),
        fd(
            "MYCOMPANY_ID",
            "crm_company",
            Kind::Int,
            Gen::Null,
            "Your company details",
        ),
        fd(
            "OPPORTUNITY",
            "double",
            Kind::Amount,
            Gen::Amount(500_000),
            "Amount",
        ),
        fd(
            "IS_MANUAL_OPPORTUNITY",
            "boolean",
            Kind::YesNo,
            Gen::YesNo(40),
            "Manual amount",
        ),
        fd(
            "TAX_VALUE",
            "double",
            Kind::Amount,
            Gen::Amount(1_000),
            "Tax amount",
        ),
        fd(
            "CURRENCY_ID",
            "crm_currency",
            Kind::Str,
            Gen::Currency,
            "Currency",
        ),
        fd("COMMENTS", "text", Kind::Str, Gen::Phrase(50), "Comment"),
        fd("LOCATION_ID", "location", Kind::Str, Gen::Null, "Location"),
    ]
}

/// Quote fields (EN object-fields.md, "Estimate").
pub(crate) fn quote_fields() -> Vec<FieldDef> {
    let mut f = common("Quote", "QUOTE_STATUS");
    f.extend([
        fd("CLOSED", "boolean", Kind::YesNo, Gen::Closed, "Closed").ro(),
        fd(
            "ACTUAL_DATE",
            "date",
            Kind::Date,
            Gen::DateAround(40),
            "Valid until",
        ),
        fd("DEAL_ID", "crm_deal", Kind::Int, Gen::Parent(2), "Deal"),
        fd("LEAD_ID", "crm_lead", Kind::Int, Gen::Lead, "Lead"),
        fd(
            "QUOTE_NUMBER",
            "string",
            Kind::Str,
            Gen::Word(&["КП-001", "Q-2024/17", ""], 20),
            "Quote #",
        ),
        fd("CONTENT", "text", Kind::Str, Gen::Phrase(40), "Content"),
        fd("TERMS", "text", Kind::Str, Gen::Phrase(60), "Terms"),
        fd(
            "PERSON_TYPE_ID",
            "integer",
            Kind::Int,
            Gen::IntRange(1, 2, 30),
            "Payer type",
        )
        .ro(),
        fd(
            "STORAGE_TYPE_ID",
            "integer",
            Kind::Int,
            Gen::IntRange(1, 3, 50),
            "Storage type",
        ),
        fd(
            "STORAGE_ELEMENT_IDS",
            "integer",
            Kind::Int,
            Gen::Observers,
            "Files",
        )
        .multi(),
    ]);
    item_only(f)
}

/// New-type invoice fields (EN object-fields.md, "Invoice").
pub(crate) fn smart_invoice_fields() -> Vec<FieldDef> {
    let mut f = common("Invoice", "SMART_INVOICE_STAGE");
    f.extend([
        fd(
            "CATEGORY_ID",
            "crm_category",
            Kind::Int,
            Gen::Category,
            "Pipeline",
        ),
        fd(
            "ACCOUNT_NUMBER",
            "string",
            Kind::Str,
            Gen::Word(&["СЧ-1", "INV/2024/\"7\"", ""], 10),
            "Invoice #",
        ),
        fd(
            "IS_RECURRING",
            "boolean",
            Kind::YesNo,
            Gen::YesNo(10),
            "Recurring",
        ),
        fd("MOVED_BY", "user", Kind::Int, Gen::User, "Moved by").ro(),
        fd(
            "MOVED_TIME",
            "datetime",
            Kind::DateTime,
            Gen::Moved,
            "Moved on",
        )
        .ro(),
        fd(
            "PREVIOUS_STAGE_ID",
            "crm_status",
            Kind::Str,
            Gen::Null,
            "Previous stage",
        ),
        fd("OBSERVERS", "user", Kind::Int, Gen::Observers, "Observers").multi(),
        fd(
            "PARENT_ID_2",
            "crm_entity",
            Kind::Int,
            Gen::Parent(2),
            "Deal",
        )
        .settings(J::obj([("parentEntityTypeId", J::Int(2))])),
    ]);
    item_only(f)
}
