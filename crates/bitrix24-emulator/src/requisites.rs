//! Requisites and their bank details (`crm.requisite.list|fields|userfield.list`,
//! `crm.requisite.bankdetail.list|fields`; EN api-reference/crm/requisites/): legacy lists
//! with upper-case codes, `DATE_MODIFY`, user fields on requisites.

use super::fields::{fd, uf_specs};
use super::model::PortalData;
use super::model::{FieldDef, Gen, Kind, TableKind};

/// Portal tables.
pub(crate) const REQUISITES: &str = "requisite";
pub(crate) const BANKS: &str = "requisite_bank";

fn common(code_words: &'static [&'static str]) -> Vec<FieldDef> {
    let int = |code: &str, genr: Gen, title: &str| fd(code, "integer", Kind::Int, genr, title);
    let text = |code: &str, genr: Gen, title: &str| fd(code, "string", Kind::Str, genr, title);
    vec![
        int("ID", Gen::Id, "ID").ro(),
        fd(
            "DATE_CREATE",
            "datetime",
            Kind::DateTime,
            Gen::Created,
            "Creation date",
        )
        .ro(),
        fd(
            "DATE_MODIFY",
            "datetime",
            Kind::DateTime,
            Gen::Modified,
            "Modification date",
        )
        .ro(),
        fd("CREATED_BY_ID", "user", Kind::Int, Gen::User, "Created by").ro(),
        fd("MODIFY_BY_ID", "user", Kind::Int, Gen::User, "Modified by").ro(),
        text("NAME", Gen::Phrase(0), "Name"),
        text("CODE", Gen::Word(code_words, 40), "Code"),
        text("XML_ID", Gen::Word(&["1c:rq-5", ""], 50), "External code"),
        text("ORIGINATOR_ID", Gen::Null, "ORIGINATOR_ID"),
        fd("ACTIVE", "char", Kind::YesNo, Gen::YesNo(90), "Active"),
        int("SORT", Gen::IntRange(100, 500, 0), "Sort order"),
    ]
}

fn requisite_fields(companies: u64) -> Vec<FieldDef> {
    let int = |code: &str, genr: Gen, title: &str| fd(code, "integer", Kind::Int, genr, title);
    let text = |code: &str, genr: Gen, title: &str| fd(code, "string", Kind::Str, genr, title);
    let max_company = i64::try_from(companies).unwrap_or(0).max(1);
    let mut f = common(&["rq-main", "rq-2"]);
    f.splice(
        1..1,
        [
            int("ENTITY_TYPE_ID", Gen::IntRange(3, 4, 0), "Entity type ID").immutable(),
            int("ENTITY_ID", Gen::IntRange(1, max_company, 0), "Entity ID").immutable(),
            int("PRESET_ID", Gen::IntRange(1, 2, 0), "Preset ID").immutable(),
        ],
    );
    f.extend([
        fd(
            "ADDRESS_ONLY",
            "char",
            Kind::YesNo,
            Gen::YesNo(10),
            "ADDRESS_ONLY",
        ),
        text("RQ_NAME", Gen::FirstName, "Full Name"),
        text(
            "RQ_COMPANY_NAME",
            Gen::Phrase(20),
            "Short organization name",
        ),
        text(
            "RQ_COMPANY_FULL_NAME",
            Gen::Word(&["ООО «Ромашка»", "ACME \"Inc\"", ""], 10),
            "Full organization name",
        ),
        text("RQ_DIRECTOR", Gen::LastName, "CEO"),
        text(
            "RQ_INN",
            Gen::Word(&["7707083893", "500100732259", ""], 10),
            "Tax ID",
        ),
        text(
            "RQ_KPP",
            Gen::Word(&["773601001", ""], 30),
            "Tax Registration Code",
        ),
        text(
            "RQ_OGRN",
            Gen::Word(&["1027700132195", ""], 30),
            "State Registration Number",
        ),
        fd(
            "RQ_IDENT_TYPE",
            "crm_status",
            Kind::Str,
            Gen::Null,
            "RQ_IDENT_TYPE",
        ),
        text("RQ_EMAIL", Gen::UserEmail, "E-Mail"),
        text(
            "RQ_PHONE",
            Gen::Word(&["+7 (495) 000-00-00", ""], 20),
            "Phone",
        ),
    ]);
    f
}

fn bank_fields(requisites: u64) -> Vec<FieldDef> {
    let int = |code: &str, genr: Gen, title: &str| fd(code, "integer", Kind::Int, genr, title);
    let text = |code: &str, genr: Gen, title: &str| fd(code, "string", Kind::Str, genr, title);
    let max_req = i64::try_from(requisites).unwrap_or(0).max(1);
    let mut f = common(&["bank-main"]);
    f.splice(
        1..1,
        [
            int("ENTITY_ID", Gen::IntRange(1, max_req, 0), "Requisite ID").immutable(),
            int("COUNTRY_ID", Gen::IntRange(1, 14, 0), "Country ID"),
        ],
    );
    f.extend([
        text(
            "RQ_BANK_NAME",
            Gen::Word(&["ПАО Сбербанк", "Deutsche Bank", "Bank \"O'Neil\""], 0),
            "Bank name",
        ),
        text("RQ_BANK_ADDR", Gen::Phrase(40), "Bank address"),
        text("RQ_BIK", Gen::Word(&["044525225", ""], 20), "BIC"),
        text(
            "RQ_ACC_NUM",
            Gen::Word(&["40702810938000012345", ""], 10),
            "Account number",
        ),
        text(
            "RQ_COR_ACC_NUM",
            Gen::Word(&["30101810400000000225", ""], 30),
            "Correspondent account",
        ),
        text(
            "RQ_IBAN",
            Gen::Word(&["DE89370400440532013000", ""], 60),
            "IBAN",
        ),
        text("RQ_SWIFT", Gen::Word(&["SABRRUMM", ""], 50), "SWIFT"),
        text(
            "RQ_ACC_CURRENCY",
            Gen::Word(&["RUB", "EUR", ""], 20),
            "Account currency",
        ),
        text("COMMENTS", Gen::Phrase(60), "Comment"),
    ]);
    f
}

impl PortalData {
    /// Requisites of companies and contacts (one user field of every type) and bank details.
    pub(crate) fn add_requisites(&mut self, requisites: u64, banks: u64) {
        let companies = self.tables.get("company").map_or(1, |t| t.spread);
        self.insert_lazy(
            REQUISITES,
            TableKind::Requisite,
            None,
            requisite_fields(companies),
            requisites,
        );
        for (suffix, user_type, multiple, label, genr) in uf_specs() {
            self.add_user_field(REQUISITES, suffix, user_type, multiple, label, genr, None);
        }
        self.insert_lazy(
            BANKS,
            TableKind::RequisiteBank,
            None,
            bank_fields(requisites),
            banks,
        );
    }
}
