//! Field catalogs of the emulated entities (standard fields + generated user fields).
//!
//! Names, types and titles follow the docs' `crm.*.fields` / `crm.item.fields` examples.

use super::json_out::J;
use super::model::{EnumOpt, FieldDef, Gen, HistPart, Kind, LegacyVis, UfGen, UfMeta};

/// Builder for one field definition.
pub(crate) fn fd(code: &str, api_type: &str, kind: Kind, genr: Gen, title: &str) -> FieldDef {
    let item = camel(code);
    FieldDef {
        code: code.to_string(),
        item_upper: code.to_string(),
        item: Some(item),
        api_type: api_type.to_string(),
        kind,
        multiple: false,
        title: title.to_string(),
        required: false,
        read_only: false,
        immutable: false,
        deprecated: false,
        status_type: None,
        settings: None,
        legacy: LegacyVis::List,
        uf: None,
        genr,
    }
}

impl FieldDef {
    /// Set a crm.item name that differs from the generic camelCase of the code.
    pub(crate) fn item_name(mut self, name: &str) -> Self {
        self.item_upper = camel_to_upper(name);
        self.item = Some(name.to_string());
        self
    }
    pub(crate) fn no_item(mut self) -> Self {
        self.item = None;
        self
    }
    pub(crate) fn vis(mut self, v: LegacyVis) -> Self {
        self.legacy = v;
        self
    }
    pub(crate) fn ro(mut self) -> Self {
        self.read_only = true;
        self
    }
    pub(crate) fn req(mut self) -> Self {
        self.required = true;
        self
    }
    pub(crate) fn immutable(mut self) -> Self {
        self.immutable = true;
        self
    }
    pub(crate) fn deprecated(mut self) -> Self {
        self.deprecated = true;
        self
    }
    pub(crate) fn multi(mut self) -> Self {
        self.multiple = true;
        self
    }
    pub(crate) fn status(mut self, t: &str) -> Self {
        self.status_type = Some(t.to_string());
        self
    }
    pub(crate) fn settings(mut self, s: J) -> Self {
        self.settings = Some(s);
        self
    }
}

/// A field titled with its own code, its API type following its kind.
pub(crate) fn plain(code: &str, kind: Kind, genr: Gen) -> FieldDef {
    let api = match kind {
        Kind::Int => "integer",
        Kind::Amount | Kind::Float => "double",
        Kind::YesNo => "char",
        Kind::Date => "date",
        Kind::DateTime => "datetime",
        _ => "string",
    };
    fd(code, api, kind, genr, code)
}

/// Stage-history fields (`crm.stagehistory.list`) of leads (`lead`) or deals and other items.
pub(crate) fn history_fields(lead: bool) -> Vec<FieldDef> {
    let mut f = vec![
        plain("ID", Kind::Int, Gen::Id),
        plain("TYPE_ID", Kind::Int, Gen::Hist(HistPart::Type)),
        plain("OWNER_ID", Kind::Int, Gen::Hist(HistPart::Owner)),
        plain("CREATED_TIME", Kind::DateTime, Gen::Hist(HistPart::Time)),
    ];
    if lead {
        f.push(plain(
            "STATUS_SEMANTIC_ID",
            Kind::Str,
            Gen::Hist(HistPart::Semantic),
        ));
        f.push(plain("STATUS_ID", Kind::Str, Gen::Hist(HistPart::Stage)));
    } else {
        f.push(plain(
            "CATEGORY_ID",
            Kind::Int,
            Gen::Hist(HistPart::Category),
        ));
        f.push(plain(
            "STAGE_SEMANTIC_ID",
            Kind::Str,
            Gen::Hist(HistPart::Semantic),
        ));
        f.push(plain("STAGE_ID", Kind::Str, Gen::Hist(HistPart::Stage)));
    }
    f
}

/// Generic camelCase per `Converter::convertFieldNameFromUpperCaseToCamelCase`, with the UF rules
/// `UF_CRM_<digits>` → `ufCrm_<digits>` and `UF_CRM_<n>_<digits>` → `ufCrm<n>_<digits>`.
pub(crate) fn camel(code: &str) -> String {
    if let Some(rest) = code.strip_prefix("UF_CRM_") {
        let parts: Vec<&str> = rest.split('_').collect();
        let all_digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
        if parts.len() == 1 && all_digits(parts[0]) {
            return format!("ufCrm_{}", parts[0]);
        }
        if parts.len() == 2 && all_digits(parts[0]) && all_digits(parts[1]) {
            return format!("ufCrm{}_{}", parts[0], parts[1]);
        }
    }
    let mut out = String::new();
    for (i, part) in code.split('_').filter(|p| !p.is_empty()).enumerate() {
        let lower = part.to_lowercase();
        if i == 0 {
            out.push_str(&lower);
        } else {
            let mut cs = lower.chars();
            if let Some(c) = cs.next() {
                out.extend(c.to_uppercase());
                out.push_str(cs.as_str());
            }
        }
    }
    out
}

/// `createdTime` → `CREATED_TIME`, `parentId1220` → `PARENT_ID_1220`.
pub(crate) fn camel_to_upper(name: &str) -> String {
    let mut out = String::new();
    let mut prev_digit = false;
    for (i, c) in name.chars().enumerate() {
        let boundary = i > 0 && (c.is_ascii_uppercase() || (c.is_ascii_digit() && !prev_digit));
        if boundary && !out.ends_with('_') {
            out.push('_');
        }
        out.extend(c.to_uppercase());
        prev_digit = c.is_ascii_digit();
    }
    out
}

fn utm(fields: &mut Vec<FieldDef>) {
    for (c, t) in [
        ("UTM_SOURCE", "Advertising System"),
        ("UTM_MEDIUM", "Traffic Type"),
        ("UTM_CAMPAIGN", "Campaign Identifier"),
        ("UTM_CONTENT", "Campaign Content"),
        ("UTM_TERM", "Campaign Search Condition"),
    ] {
        let genr = if c == "UTM_SOURCE" {
            Gen::Word(&["google", "yandex", "facebook", "newsletter"], 40)
        } else {
            Gen::Word(&["cpc", "email", "banner"], 70)
        };
        fields.push(fd(c, "string", Kind::Str, genr, t));
    }
}

fn address(fields: &mut Vec<FieldDef>, prefix: &str, title: &str) {
    for (suffix, t) in [
        ("", ""),
        ("_2", " (line 2)"),
        ("_CITY", " City"),
        ("_POSTAL_CODE", " Postal Code"),
        ("_REGION", " Region"),
        ("_PROVINCE", " Province"),
        ("_COUNTRY", " Country"),
        ("_COUNTRY_CODE", " Country Code"),
    ] {
        let genr = match suffix {
            "" => Gen::Phrase(50),
            "_CITY" => Gen::Word(&["Москва", "Berlin", "Алматы", "São Paulo"], 40),
            "_COUNTRY" => Gen::Word(&["Россия", "Germany", "Қазақстан"], 40),
            _ => Gen::Null,
        };
        let code = format!("{prefix}{suffix}");
        fields.push(fd(&code, "string", Kind::Str, genr, &format!("{title}{t}")).no_item());
    }
    let loc = format!("{prefix}_LOC_ADDR_ID");
    fields.push(fd(&loc, "integer", Kind::Int, Gen::Null, "Location Address ID").no_item());
}

fn multifields(fields: &mut Vec<FieldDef>) {
    for (c, t) in [
        ("PHONE", "Phone"),
        ("EMAIL", "E-mail"),
        ("WEB", "Website"),
        ("IM", "Messenger"),
    ] {
        fields.push(
            fd(c, "crm_multifield", Kind::Fm, Gen::Fm(c), t)
                .multi()
                .vis(LegacyVis::Explicit)
                .no_item(),
        );
    }
}

fn people_audit(fields: &mut Vec<FieldDef>) {
    fields.push(fd(
        "ASSIGNED_BY_ID",
        "user",
        Kind::Int,
        Gen::User,
        "Responsible",
    ));
    fields.push(
        fd("CREATED_BY_ID", "user", Kind::Int, Gen::User, "Created By")
            .ro()
            .item_name("createdBy"),
    );
    fields.push(
        fd("MODIFY_BY_ID", "user", Kind::Int, Gen::User, "Modified By")
            .ro()
            .item_name("updatedBy"),
    );
    fields.push(
        fd(
            "DATE_CREATE",
            "datetime",
            Kind::DateTime,
            Gen::Created,
            "Creation Date",
        )
        .ro()
        .item_name("createdTime"),
    );
    fields.push(
        fd(
            "DATE_MODIFY",
            "datetime",
            Kind::DateTime,
            Gen::Modified,
            "Modification Date",
        )
        .ro()
        .item_name("updatedTime"),
    );
}

fn parent_fields(fields: &mut Vec<FieldDef>, parents: &[(u32, String)], vis: LegacyVis) {
    for (etid, title) in parents {
        let code = format!("PARENT_ID_{etid}");
        fields.push(
            fd(&code, "crm_entity", Kind::Int, Gen::Parent(*etid), title)
                .settings(J::obj([("parentEntityTypeId", J::Int(i64::from(*etid)))]))
                .vis(vis),
        );
    }
}

/// Deal standard fields (EN crm-deal-fields.md) + crm.item-only fields.
pub(crate) fn deal_fields(parents: &[(u32, String)]) -> Vec<FieldDef> {
    let mut f = vec![
        fd("ID", "integer", Kind::Int, Gen::Id, "ID").ro(),
        fd("TITLE", "string", Kind::Str, Gen::Title("Deal"), "Title"),
        fd(
            "TYPE_ID",
            "crm_status",
            Kind::Str,
            Gen::Word(&["SALE", "COMPLEX", "GOODS", "SERVICES"], 5),
            "Type",
        )
        .status("DEAL_TYPE"),
        fd(
            "CATEGORY_ID",
            "crm_category",
            Kind::Int,
            Gen::Category,
            "Sales Funnel",
        )
        .immutable(),
        fd(
            "STAGE_ID",
            "crm_status",
            Kind::Str,
            Gen::Stage,
            "Deal Stage",
        )
        .status("DEAL_STAGE"),
        fd(
            "STAGE_SEMANTIC_ID",
            "string",
            Kind::Str,
            Gen::StageSemantic,
            "Stage Group",
        )
        .ro(),
        fd("IS_NEW", "char", Kind::YesNo, Gen::YesNo(20), "New Deal").ro(),
        fd(
            "IS_RECURRING",
            "char",
            Kind::YesNo,
            Gen::YesNo(5),
            "Recurring Deal",
        ),
        fd(
            "IS_RETURN_CUSTOMER",
            "char",
            Kind::YesNo,
            Gen::YesNo(15),
            "Repeat Deal",
        ),
        fd(
            "IS_REPEATED_APPROACH",
            "char",
            Kind::YesNo,
            Gen::YesNo(10),
            "Repeated Approach",
        ),
        fd(
            "PROBABILITY",
            "integer",
            Kind::Int,
            Gen::IntRange(0, 100, 30),
            "Probability",
        ),
        fd(
            "CURRENCY_ID",
            "crm_currency",
            Kind::Str,
            Gen::Currency,
            "Currency",
        ),
        fd(
            "OPPORTUNITY",
            "double",
            Kind::Amount,
            Gen::Amount(2_000_000),
            "Amount",
        ),
        fd(
            "IS_MANUAL_OPPORTUNITY",
            "char",
            Kind::YesNo,
            Gen::YesNo(50),
            "IS_MANUAL_OPPORTUNITY",
        ),
        fd(
            "TAX_VALUE",
            "double",
            Kind::Amount,
            Gen::Amount(1000),
            "Tax Rate",
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
        .multi()
        .vis(LegacyVis::FieldsOnly),
        fd("QUOTE_ID", "crm_quote", Kind::Int, Gen::Null, "Estimate")
            .settings(J::obj([("parentEntityTypeId", J::Int(7))])),
        fd(
            "BEGINDATE",
            "date",
            Kind::Date,
            Gen::DateAround(0),
            "Start Date",
        ),
        fd(
            "CLOSEDATE",
            "date",
            Kind::Date,
            Gen::DateAround(20),
            "Close Date",
        ),
        fd(
            "OPENED",
            "char",
            Kind::YesNo,
            Gen::YesNo(80),
            "Available to All",
        ),
        fd("CLOSED", "char", Kind::YesNo, Gen::Closed, "Closed"),
        fd("COMMENTS", "string", Kind::Str, Gen::Phrase(40), "Comment"),
    ];
    people_audit(&mut f);
    f.extend([
        fd("MOVED_BY_ID", "user", Kind::Int, Gen::User, "MOVED_BY_ID")
            .ro()
            .item_name("movedBy"),
        fd(
            "MOVED_TIME",
            "datetime",
            Kind::DateTime,
            Gen::Moved,
            "MOVED_TIME",
        )
        .ro(),
        fd(
            "SOURCE_ID",
            "crm_status",
            Kind::Str,
            Gen::Word(&["CALL", "WEB", "EMAIL", "ADVERTISING", "TRADE_SHOW"], 20),
            "Source",
        )
        .status("SOURCE"),
        fd(
            "SOURCE_DESCRIPTION",
            "string",
            Kind::Str,
            Gen::Phrase(60),
            "Additional Info about Source",
        ),
        fd("LEAD_ID", "crm_lead", Kind::Int, Gen::Lead, "Lead")
            .settings(J::obj([("parentEntityTypeId", J::Int(1))])),
        fd(
            "ADDITIONAL_INFO",
            "string",
            Kind::Str,
            Gen::Null,
            "Additional Information",
        )
        .no_item(),
        fd("LOCATION_ID", "location", Kind::Str, Gen::Null, "Location").no_item(),
        fd(
            "ORIGINATOR_ID",
            "string",
            Kind::Str,
            Gen::Null,
            "External Source",
        ),
        fd(
            "ORIGIN_ID",
            "string",
            Kind::Str,
            Gen::Null,
            "Identifier in External Source",
        ),
    ]);
    utm(&mut f);
    f.extend([
        fd(
            "LAST_ACTIVITY_TIME",
            "datetime",
            Kind::DateTime,
            Gen::Moved,
            "LAST_ACTIVITY_TIME",
        )
        .ro(),
        fd(
            "LAST_ACTIVITY_BY",
            "user",
            Kind::Int,
            Gen::User,
            "LAST_ACTIVITY_BY",
        )
        .ro(),
        fd("OBSERVERS", "user", Kind::Int, Gen::Observers, "Observers")
            .multi()
            .vis(LegacyVis::None),
    ]);
    parent_fields(&mut f, parents, LegacyVis::GetOnly);
    f
}

/// Lead standard fields (EN crm-lead-get.md / crm-lead-fields.md).
pub(crate) fn lead_fields(parents: &[(u32, String)]) -> Vec<FieldDef> {
    let mut f = vec![
        fd("ID", "integer", Kind::Int, Gen::Id, "ID").ro(),
        fd(
            "TITLE",
            "string",
            Kind::Str,
            Gen::Title("Lead"),
            "Lead Name",
        ),
        fd(
            "HONORIFIC",
            "crm_status",
            Kind::Str,
            Gen::Word(&["HNR_RU_1", "HNR_RU_2"], 70),
            "Salutation",
        )
        .status("HONORIFIC"),
        fd("NAME", "string", Kind::Str, Gen::FirstName, "First Name"),
        fd(
            "SECOND_NAME",
            "string",
            Kind::Str,
            Gen::Word(&["Ивановна", "Petrovich", "J."], 70),
            "Second Name",
        ),
        fd("LAST_NAME", "string", Kind::Str, Gen::LastName, "Last Name"),
        fd(
            "COMPANY_TITLE",
            "string",
            Kind::Str,
            Gen::Phrase(60),
            "Company Name",
        ),
        fd(
            "COMPANY_ID",
            "crm_company",
            Kind::Int,
            Gen::Company,
            "Company",
        ),
        fd(
            "CONTACT_ID",
            "crm_contact",
            Kind::Int,
            Gen::FirstContact,
            "Contact",
        ),
        fd(
            "CONTACT_IDS",
            "crm_contact",
            Kind::Int,
            Gen::ContactIds,
            "Contacts",
        )
        .multi()
        .vis(LegacyVis::None),
        fd(
            "IS_RETURN_CUSTOMER",
            "char",
            Kind::YesNo,
            Gen::YesNo(10),
            "Repeat Lead",
        ),
        fd(
            "BIRTHDATE",
            "date",
            Kind::Date,
            Gen::Birthday,
            "Date of Birth",
        ),
        fd(
            "SOURCE_ID",
            "crm_status",
            Kind::Str,
            Gen::Word(&["CALL", "WEB", "EMAIL", "ADVERTISING"], 20),
            "Source",
        )
        .status("SOURCE"),
        fd(
            "SOURCE_DESCRIPTION",
            "string",
            Kind::Str,
            Gen::Phrase(60),
            "Source Information",
        ),
        fd(
            "STATUS_ID",
            "crm_status",
            Kind::Str,
            Gen::LeadStatus,
            "Status",
        )
        .status("STATUS")
        .item_name("stageId"),
        fd(
            "STATUS_DESCRIPTION",
            "string",
            Kind::Str,
            Gen::Null,
            "Status Information",
        ),
        fd(
            "POST",
            "string",
            Kind::Str,
            Gen::Word(&["CEO", "Менеджер", "CTO"], 50),
            "Position",
        ),
        fd("COMMENTS", "string", Kind::Str, Gen::Phrase(50), "Comment"),
        fd(
            "CURRENCY_ID",
            "crm_currency",
            Kind::Str,
            Gen::Currency,
            "Currency",
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
            "char",
            Kind::YesNo,
            Gen::YesNo(50),
            "IS_MANUAL_OPPORTUNITY",
        ),
        fd(
            "HAS_PHONE",
            "char",
            Kind::YesNo,
            Gen::HasFm("PHONE"),
            "Has phone",
        )
        .ro(),
        fd(
            "HAS_EMAIL",
            "char",
            Kind::YesNo,
            Gen::HasFm("EMAIL"),
            "Has email",
        )
        .ro(),
        fd(
            "HAS_IMOL",
            "char",
            Kind::YesNo,
            Gen::HasFm("IM"),
            "Has Open Channel",
        )
        .ro(),
    ];
    people_audit(&mut f);
    f.extend([
        fd(
            "DATE_CLOSED",
            "datetime",
            Kind::DateTime,
            Gen::Null,
            "Closed",
        )
        .ro(),
        fd(
            "STATUS_SEMANTIC_ID",
            "string",
            Kind::Str,
            Gen::LeadSemantic,
            "Status details",
        )
        .ro()
        .item_name("stageSemanticId"),
        fd(
            "OPENED",
            "char",
            Kind::YesNo,
            Gen::YesNo(80),
            "Available to everyone",
        ),
        fd(
            "ORIGINATOR_ID",
            "string",
            Kind::Str,
            Gen::Null,
            "External source",
        ),
        fd(
            "ORIGIN_ID",
            "string",
            Kind::Str,
            Gen::Null,
            "External source item ID",
        ),
        fd("MOVED_BY_ID", "user", Kind::Int, Gen::User, "MOVED_BY_ID")
            .ro()
            .item_name("movedBy"),
        fd(
            "MOVED_TIME",
            "datetime",
            Kind::DateTime,
            Gen::Moved,
            "MOVED_TIME",
        )
        .ro(),
    ]);
    address(&mut f, "ADDRESS", "Address");
    utm(&mut f);
    f.extend([
        fd(
            "LAST_ACTIVITY_BY",
            "user",
            Kind::Int,
            Gen::User,
            "LAST_ACTIVITY_BY",
        )
        .ro(),
        fd(
            "LAST_ACTIVITY_TIME",
            "datetime",
            Kind::DateTime,
            Gen::Moved,
            "LAST_ACTIVITY_TIME",
        )
        .ro(),
        fd("OBSERVERS", "user", Kind::Int, Gen::Observers, "Observers")
            .multi()
            .vis(LegacyVis::None),
    ]);
    multifields(&mut f);
    parent_fields(&mut f, parents, LegacyVis::None);
    f
}

/// Contact standard fields (EN crm-contact-fields.md).
pub(crate) fn contact_fields(parents: &[(u32, String)]) -> Vec<FieldDef> {
    let mut f = vec![
        fd("ID", "integer", Kind::Int, Gen::Id, "ID").ro(),
        fd(
            "HONORIFIC",
            "crm_status",
            Kind::Str,
            Gen::Word(&["HNR_RU_1", "HNR_RU_2"], 70),
            "Salutation",
        )
        .status("HONORIFIC"),
        fd("NAME", "string", Kind::Str, Gen::FirstName, "First name"),
        fd(
            "SECOND_NAME",
            "string",
            Kind::Str,
            Gen::Word(&["Ивановна", "Petrovich", "J."], 70),
            "Second name",
        ),
        fd("LAST_NAME", "string", Kind::Str, Gen::LastName, "Last name"),
        fd("PHOTO", "file", Kind::File, Gen::Null, "Photo").no_item(),
        fd(
            "BIRTHDATE",
            "date",
            Kind::Date,
            Gen::Birthday,
            "Date of birth",
        ),
        fd(
            "TYPE_ID",
            "crm_status",
            Kind::Str,
            Gen::Word(&["CLIENT", "SUPPLIER", "PARTNER", "OTHER"], 10),
            "Contact type",
        )
        .status("CONTACT_TYPE"),
        fd(
            "SOURCE_ID",
            "crm_status",
            Kind::Str,
            Gen::Word(&["CALL", "WEB", "EMAIL", "SELF"], 20),
            "Source",
        )
        .status("SOURCE"),
        fd(
            "SOURCE_DESCRIPTION",
            "string",
            Kind::Str,
            Gen::Phrase(60),
            "Source information",
        ),
        fd(
            "POST",
            "string",
            Kind::Str,
            Gen::Word(&["CEO", "Бухгалтер", "Engineer"], 40),
            "Position",
        ),
        fd("COMMENTS", "string", Kind::Str, Gen::Phrase(50), "Comment"),
        fd(
            "OPENED",
            "char",
            Kind::YesNo,
            Gen::YesNo(80),
            "Available to everyone",
        ),
        fd(
            "EXPORT",
            "char",
            Kind::YesNo,
            Gen::YesNo(90),
            "Included in export",
        ),
        fd(
            "HAS_PHONE",
            "char",
            Kind::YesNo,
            Gen::HasFm("PHONE"),
            "Has phone",
        )
        .ro(),
        fd(
            "HAS_EMAIL",
            "char",
            Kind::YesNo,
            Gen::HasFm("EMAIL"),
            "Has email",
        )
        .ro(),
        fd(
            "HAS_IMOL",
            "char",
            Kind::YesNo,
            Gen::HasFm("IM"),
            "Has Open Channel",
        )
        .ro(),
    ];
    people_audit(&mut f);
    f.extend([
        fd(
            "COMPANY_ID",
            "crm_company",
            Kind::Int,
            Gen::Company,
            "Company",
        )
        .deprecated(),
        fd(
            "COMPANY_IDS",
            "crm_company",
            Kind::Int,
            Gen::CompanyIds,
            "Companies",
        )
        .multi()
        .vis(LegacyVis::FieldsOnly),
        fd("LEAD_ID", "crm_lead", Kind::Int, Gen::Lead, "Lead"),
        fd(
            "ORIGINATOR_ID",
            "string",
            Kind::Str,
            Gen::Null,
            "External source",
        ),
        fd(
            "ORIGIN_ID",
            "string",
            Kind::Str,
            Gen::Null,
            "Item ID in data source",
        ),
        fd(
            "ORIGIN_VERSION",
            "string",
            Kind::Str,
            Gen::Null,
            "Original version",
        ),
    ]);
    address(&mut f, "ADDRESS", "Address");
    utm(&mut f);
    f.extend([
        fd(
            "LAST_ACTIVITY_TIME",
            "datetime",
            Kind::DateTime,
            Gen::Moved,
            "Last activity",
        )
        .ro(),
        fd(
            "LAST_ACTIVITY_BY",
            "user",
            Kind::Int,
            Gen::User,
            "Last activity by",
        )
        .ro(),
        fd("OBSERVERS", "user", Kind::Int, Gen::Observers, "Observers")
            .multi()
            .vis(LegacyVis::None),
    ]);
    multifields(&mut f);
    parent_fields(&mut f, parents, LegacyVis::None);
    f
}

/// Company standard fields (fixture crm.company.fields.json).
pub(crate) fn company_fields(parents: &[(u32, String)]) -> Vec<FieldDef> {
    let mut f = vec![
        fd("ID", "integer", Kind::Int, Gen::Id, "ID").ro(),
        fd(
            "TITLE",
            "string",
            Kind::Str,
            Gen::Title("Company"),
            "Company Name",
        )
        .req(),
        fd(
            "COMPANY_TYPE",
            "crm_status",
            Kind::Str,
            Gen::Word(&["CUSTOMER", "PARTNER", "RESELLER", "OTHER"], 10),
            "Company Type",
        )
        .status("COMPANY_TYPE"),
        fd("LOGO", "file", Kind::File, Gen::Null, "Logo").no_item(),
    ];
    address(&mut f, "ADDRESS", "Physical Address");
    f.push(
        fd(
            "ADDRESS_LEGAL",
            "string",
            Kind::Str,
            Gen::Null,
            "Legal Address",
        )
        .no_item(),
    );
    address(&mut f, "REG_ADDRESS", "Legal Address");
    f.extend([
        fd(
            "BANKING_DETAILS",
            "string",
            Kind::Str,
            Gen::Phrase(70),
            "Banking Details",
        )
        .no_item(),
        fd(
            "INDUSTRY",
            "crm_status",
            Kind::Str,
            Gen::Word(&["IT", "MANUFACTURING", "BANKING", "OTHER"], 20),
            "Industry",
        )
        .status("INDUSTRY"),
        fd(
            "EMPLOYEES",
            "crm_status",
            Kind::Str,
            Gen::Word(&["EMPLOYEES_1", "EMPLOYEES_2", "EMPLOYEES_3"], 20),
            "Number of Employees",
        )
        .status("EMPLOYEES"),
        fd(
            "CURRENCY_ID",
            "crm_currency",
            Kind::Str,
            Gen::Currency,
            "Currency",
        ),
        fd(
            "REVENUE",
            "double",
            Kind::Amount,
            Gen::Amount(50_000_000),
            "Annual Revenue",
        ),
        fd(
            "OPENED",
            "char",
            Kind::YesNo,
            Gen::YesNo(80),
            "Available to Everyone",
        ),
        fd("COMMENTS", "string", Kind::Str, Gen::Phrase(50), "Comment"),
        fd(
            "HAS_PHONE",
            "char",
            Kind::YesNo,
            Gen::HasFm("PHONE"),
            "Phone Set",
        )
        .ro(),
        fd(
            "HAS_EMAIL",
            "char",
            Kind::YesNo,
            Gen::HasFm("EMAIL"),
            "E-mail Set",
        )
        .ro(),
        fd(
            "HAS_IMOL",
            "char",
            Kind::YesNo,
            Gen::HasFm("IM"),
            "Open Line Set",
        )
        .ro(),
        fd(
            "IS_MY_COMPANY",
            "char",
            Kind::YesNo,
            Gen::YesNo(2),
            "My Company",
        ),
    ]);
    people_audit(&mut f);
    f.extend([
        fd(
            "CONTACT_ID",
            "crm_contact",
            Kind::Int,
            Gen::FirstContact,
            "Contact",
        ),
        fd("LEAD_ID", "crm_lead", Kind::Int, Gen::Lead, "Lead")
            .settings(J::obj([("parentEntityTypeId", J::Int(1))])),
        fd(
            "ORIGINATOR_ID",
            "string",
            Kind::Str,
            Gen::Null,
            "External Source",
        ),
        fd(
            "ORIGIN_ID",
            "string",
            Kind::Str,
            Gen::Null,
            "Identifier in External Source",
        ),
        fd(
            "ORIGIN_VERSION",
            "string",
            Kind::Str,
            Gen::Null,
            "Original Version",
        ),
    ]);
    utm(&mut f);
    f.extend([
        fd(
            "LAST_ACTIVITY_TIME",
            "datetime",
            Kind::DateTime,
            Gen::Moved,
            "Last Activity Time",
        )
        .ro(),
        fd(
            "LAST_ACTIVITY_BY",
            "user",
            Kind::Int,
            Gen::User,
            "Last Activity Author",
        )
        .ro(),
        fd("OBSERVERS", "user", Kind::Int, Gen::Observers, "Observers")
            .multi()
            .vis(LegacyVis::None),
    ]);
    multifields(&mut f);
    parent_fields(&mut f, parents, LegacyVis::GetOnly);
    f
}

/// Smart-process standard fields (fixture crm.item.fields.json); codes are the `upperName`s.
pub(crate) fn dynamic_fields(etid: u32, parents: &[(u32, String)]) -> Vec<FieldDef> {
    let stage_type = format!("DYNAMIC_{etid}_STAGE");
    let mut f = vec![
        fd("ID", "integer", Kind::Int, Gen::Id, "ID").ro(),
        fd("XML_ID", "string", Kind::Str, Gen::Null, "External code"),
        fd("TITLE", "string", Kind::Str, Gen::Title("Item"), "Name"),
        fd("CREATED_BY", "user", Kind::Int, Gen::User, "Created by").ro(),
        fd("UPDATED_BY", "user", Kind::Int, Gen::User, "Updated by").ro(),
        fd("MOVED_BY", "user", Kind::Int, Gen::User, "Moved by").ro(),
        fd(
            "CREATED_TIME",
            "datetime",
            Kind::DateTime,
            Gen::Created,
            "Created at",
        )
        .ro(),
        fd(
            "UPDATED_TIME",
            "datetime",
            Kind::DateTime,
            Gen::Modified,
            "Updated at",
        )
        .ro(),
        fd(
            "MOVED_TIME",
            "datetime",
            Kind::DateTime,
            Gen::Moved,
            "Moved at",
        )
        .ro(),
        fd(
            "CATEGORY_ID",
            "crm_category",
            Kind::Int,
            Gen::Category,
            "Pipeline",
        ),
        fd(
            "OPENED",
            "boolean",
            Kind::YesNo,
            Gen::YesNo(70),
            "Publicly available",
        ),
        fd("STAGE_ID", "crm_status", Kind::Str, Gen::Stage, "Stage").status(&stage_type),
        fd(
            "PREVIOUS_STAGE_ID",
            "crm_status",
            Kind::Str,
            Gen::Null,
            "Previous stage",
        )
        .status(&stage_type),
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
            Gen::DateAround(10),
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
            "CONTACT_IDS",
        )
        .multi(),
        fd(
            "OPPORTUNITY",
            "double",
            Kind::Amount,
            Gen::Amount(300_000),
            "Amount",
        ),
        fd(
            "IS_MANUAL_OPPORTUNITY",
            "boolean",
            Kind::YesNo,
            Gen::YesNo(50),
            "Amount calculation mode",
        ),
        fd(
            "TAX_VALUE",
            "double",
            Kind::Amount,
            Gen::Amount(100),
            "Tax amount",
        ),
        fd(
            "CURRENCY_ID",
            "crm_currency",
            Kind::Str,
            Gen::Currency,
            "Currency",
        ),
        fd(
            "MYCOMPANY_ID",
            "crm_company",
            Kind::Int,
            Gen::Null,
            "Your company details",
        )
        .settings(J::obj([
            ("isMyCompany", J::Bool(true)),
            ("parentEntityTypeId", J::Int(4)),
            ("isEmbeddedEditorEnabled", J::Bool(true)),
        ])),
        fd(
            "SOURCE_ID",
            "crm_status",
            Kind::Str,
            Gen::Word(&["CALL", "WEB", "EMAIL"], 30),
            "Source",
        )
        .status("SOURCE"),
        fd(
            "SOURCE_DESCRIPTION",
            "text",
            Kind::Str,
            Gen::Phrase(60),
            "Additional source info",
        ),
        fd(
            "WEBFORM_ID",
            "integer",
            Kind::Int,
            Gen::Null,
            "Created by CRM form",
        ),
        fd(
            "ASSIGNED_BY_ID",
            "user",
            Kind::Int,
            Gen::User,
            "Assigned to",
        ),
        fd(
            "LAST_ACTIVITY_BY",
            "user",
            Kind::Int,
            Gen::User,
            "Last activity in timeline by",
        )
        .ro(),
        fd(
            "LAST_ACTIVITY_TIME",
            "datetime",
            Kind::DateTime,
            Gen::Moved,
            "Last activity",
        )
        .ro(),
        fd("OBSERVERS", "user", Kind::Int, Gen::Observers, "Observers").multi(),
    ];
    for x in f.iter_mut() {
        x.legacy = LegacyVis::None;
    }
    parent_fields(&mut f, parents, LegacyVis::None);
    f
}

/// One UF of each supported type: (suffix, user type, multiple, label, generator).
pub(crate) fn uf_specs() -> Vec<(&'static str, &'static str, bool, &'static str, UfGen)> {
    vec![
        ("STRING", "string", false, "Строка 📝", UfGen::Str),
        ("STRING_MULTI", "string", true, "Tags \"multi\"", UfGen::Str),
        ("INTEGER", "integer", false, "Целое число", UfGen::Int),
        ("DOUBLE", "double", false, "Double <value>", UfGen::Double),
        ("BOOLEAN", "boolean", false, "Да/Нет", UfGen::Bool),
        ("DATE", "date", false, "Дата договора", UfGen::Date),
        (
            "DATETIME",
            "datetime",
            false,
            "Date & time",
            UfGen::DateTime,
        ),
        ("ENUM", "enumeration", false, "Список 'single'", UfGen::Enum),
        (
            "ENUM_MULTI",
            "enumeration",
            true,
            "'; DROP TABLE b24.crm_deal; --",
            UfGen::Enum,
        ),
        ("MONEY", "money", false, "Бюджет 💰", UfGen::Money),
        ("URL", "url", false, "Site URL", UfGen::Url),
        (
            "ADDRESS",
            "address",
            false,
            "Адрес\nдоставки",
            UfGen::Address,
        ),
        ("FILE", "file", false, "Contract file", UfGen::File),
        ("EMPLOYEE", "employee", false, "Куратор", UfGen::Employee),
        ("CRM", "crm", false, "Linked item", UfGen::Crm),
        ("CRM_MULTI", "crm", true, "Linked items", UfGen::Crm),
        (
            "CRM_STATUS",
            "crm_status",
            false,
            "Отрасль",
            UfGen::CrmStatus,
        ),
        (
            "IBLOCK",
            "iblock_element",
            false,
            "Catalog element",
            UfGen::Iblock,
        ),
        (
            "REST_APP",
            "rest_42_rating",
            false,
            "App rating ⭐",
            UfGen::Rest,
        ),
        ("FILES", "file", true, "Scans", UfGen::File),
    ]
}

/// UF settings per type, shaped like crm.deal.userfield.list / crm.company.fields examples.
pub(crate) fn uf_settings(user_type: &str) -> J {
    match user_type {
        "string" => J::obj([
            ("SIZE", J::Int(20)),
            ("ROWS", J::Int(1)),
            ("REGEXP", J::str("")),
            ("MIN_LENGTH", J::Int(0)),
            ("MAX_LENGTH", J::Int(0)),
            ("DEFAULT_VALUE", J::str("")),
        ]),
        "enumeration" => J::obj([
            ("DISPLAY", J::str("LIST")),
            ("LIST_HEIGHT", J::Int(1)),
            ("CAPTION_NO_VALUE", J::str("")),
            ("SHOW_NO_VALUE", J::str("Y")),
        ]),
        "crm" => J::obj([
            ("LEAD", J::str("Y")),
            ("CONTACT", J::str("Y")),
            ("COMPANY", J::str("Y")),
            ("DEAL", J::str("Y")),
        ]),
        "crm_status" => J::obj([("ENTITY_TYPE", J::str("INDUSTRY"))]),
        "money" => J::obj([("DEFAULT_VALUE", J::str(""))]),
        "boolean" => J::obj([
            ("DEFAULT_VALUE", J::Int(0)),
            ("DISPLAY", J::str("CHECKBOX")),
        ]),
        "file" => J::obj([
            ("SIZE", J::Int(20)),
            ("LIST_WIDTH", J::Int(0)),
            ("LIST_HEIGHT", J::Int(0)),
            ("MAX_SHOW_SIZE", J::Int(0)),
            ("MAX_ALLOWED_SIZE", J::Int(0)),
            ("EXTENSIONS", J::List(vec![])),
            ("TARGET_BLANK", J::str("Y")),
        ]),
        _ => J::obj([("DEFAULT_VALUE", J::str(""))]),
    }
}

/// Build a UF definition.
pub(crate) fn uf_field(
    code: &str,
    user_type: &str,
    multiple: bool,
    label: &str,
    genr: UfGen,
    uf_id: u64,
    options: Vec<EnumOpt>,
) -> FieldDef {
    let kind = uf_kind(user_type);
    let mut f = fd(code, user_type, kind, Gen::Uf(genr), code);
    f.multiple = multiple;
    f.uf = Some(UfMeta {
        id: uf_id,
        user_type_id: user_type.to_string(),
        sort: 100 + (uf_id % 50) as i64 * 10,
        label: label.to_string(),
        mandatory: false,
        settings: uf_settings(user_type),
        options,
    });
    if user_type == "crm" || user_type == "crm_status" {
        f.settings = Some(uf_settings(user_type));
    }
    f
}

pub(crate) fn uf_kind(user_type: &str) -> Kind {
    match user_type {
        "integer" | "employee" | "iblock_element" | "iblock_section" => Kind::Int,
        "double" => Kind::Float,
        "boolean" => Kind::UfBool,
        "date" => Kind::Date,
        "datetime" => Kind::DateTime,
        "enumeration" => Kind::Enum,
        "money" => Kind::Money,
        "crm" => Kind::Binding,
        "file" => Kind::File,
        _ => Kind::Str,
    }
}

/// Generator for a UF of a given user type (used by the control API).
pub(crate) fn uf_gen_for(user_type: &str) -> UfGen {
    match user_type {
        "integer" => UfGen::Int,
        "double" => UfGen::Double,
        "boolean" => UfGen::Bool,
        "date" => UfGen::Date,
        "datetime" => UfGen::DateTime,
        "enumeration" => UfGen::Enum,
        "money" => UfGen::Money,
        "url" => UfGen::Url,
        "address" => UfGen::Address,
        "file" => UfGen::File,
        "employee" => UfGen::Employee,
        "crm" => UfGen::Crm,
        "crm_status" => UfGen::CrmStatus,
        "iblock_element" | "iblock_section" => UfGen::Iblock,
        "string" => UfGen::Str,
        _ => UfGen::Rest,
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camel_rules() {
        assert_eq!(camel("ASSIGNED_BY_ID"), "assignedById");
        assert_eq!(camel("PARENT_ID_1220"), "parentId1220");
        assert_eq!(camel("UF_CRM_1721244707107"), "ufCrm_1721244707107");
        assert_eq!(camel("UF_CRM_5_1721812760630"), "ufCrm5_1721812760630");
        assert_eq!(camel("UF_CRM_MY_STRING"), "ufCrmMyString");
        assert_eq!(camel_to_upper("createdTime"), "CREATED_TIME");
        assert_eq!(camel_to_upper("parentId1220"), "PARENT_ID_1220");
    }
}
