//! The product catalog as the legacy CRM methods serve it (`crm.product.list|fields`,
//! `crm.productsection.list|fields`; EN api-reference/crm/outdated/products/ and
//! product-section/): upper-case keys, strings, `PROPERTY_<id>` product properties only when
//! `PROPERTY_*` (or the code) is selected, `{valueId, value}` objects (a list for a multiple
//! property), `TIMESTAMP_X` the modification time.

use super::fields::fd;
use super::model::PortalData;
use super::model::{FieldDef, Gen, Kind, LegacyVis, TableKind};

/// Portal tables.
pub(crate) const PRODUCTS: &str = "product";
pub(crate) const SECTIONS: &str = "product_section";
/// The product catalog's iblock id (`CATALOG_ID`).
const CATALOG_ID: i64 = 25;

fn product_fields(sections: u64) -> Vec<FieldDef> {
    let int = |code: &str, genr: Gen, title: &str| fd(code, "integer", Kind::Int, genr, title);
    let text = |code: &str, genr: Gen, title: &str| fd(code, "string", Kind::Str, genr, title);
    let max_section = i64::try_from(sections).unwrap_or(0).max(1);
    vec![
        int("ID", Gen::Id, "ID").ro(),
        int(
            "CATALOG_ID",
            Gen::Const(super::model::Val::Int(CATALOG_ID)),
            "Catalog ID",
        ),
        fd(
            "PRICE",
            "double",
            Kind::Amount,
            Gen::Amount(100_000),
            "Price",
        ),
        text("CURRENCY_ID", Gen::Currency, "Currency"),
        text("NAME", Gen::Title("Товар"), "Name").req(),
        text(
            "CODE",
            Gen::Word(&["iphone-14", "consulting", ""], 20),
            "Code",
        ),
        text("DESCRIPTION", Gen::Phrase(40), "Description"),
        text(
            "DESCRIPTION_TYPE",
            Gen::Word(&["text", "html"], 0),
            "Description type",
        ),
        fd("ACTIVE", "char", Kind::YesNo, Gen::YesNo(85), "Active"),
        int("SECTION_ID", Gen::IntRange(1, max_section, 30), "Section"),
        int("SORT", Gen::IntRange(100, 500, 0), "Sort"),
        int("VAT_ID", Gen::IntRange(1, 3, 50), "VAT rate"),
        fd(
            "VAT_INCLUDED",
            "char",
            Kind::YesNo,
            Gen::YesNo(50),
            "VAT included",
        ),
        int("MEASURE", Gen::IntRange(1, 5, 10), "Unit of measure"),
        text(
            "XML_ID",
            Gen::Word(&["1c:7f3a", "import-17"], 40),
            "External code",
        ),
        fd(
            "PREVIEW_PICTURE",
            "product_file",
            Kind::Str,
            Gen::Null,
            "Preview picture",
        ),
        fd(
            "DATE_CREATE",
            "datetime",
            Kind::DateTime,
            Gen::Created,
            "Created",
        )
        .ro(),
        fd(
            "TIMESTAMP_X",
            "datetime",
            Kind::DateTime,
            Gen::Modified,
            "Modified",
        )
        .ro(),
        int("CREATED_BY", Gen::User, "Created by").ro(),
        int("MODIFIED_BY", Gen::User, "Modified by").ro(),
        // Product properties: served only when selected (`PROPERTY_*`).
        fd(
            "PROPERTY_101",
            "product_property",
            Kind::Json,
            Gen::Word(
                &[
                    r#"{"valueId":"7001","value":"Красный"}"#,
                    r#"{"valueId":"7002","value":"Blue \"navy\""}"#,
                ],
                30,
            ),
            "Цвет",
        )
        .vis(LegacyVis::Explicit),
        fd(
            "PROPERTY_102",
            "product_property",
            Kind::Json,
            Gen::Word(
                &[
                    r#"[{"valueId":"7101","value":"S"},{"valueId":"7102","value":"XL"}]"#,
                    r#"[{"valueId":"7103","value":"M"}]"#,
                ],
                50,
            ),
            "Sizes",
        )
        .vis(LegacyVis::Explicit),
    ]
}

fn section_fields(sections: u64) -> Vec<FieldDef> {
    let int = |code: &str, genr: Gen, title: &str| fd(code, "integer", Kind::Int, genr, title);
    let text = |code: &str, genr: Gen, title: &str| fd(code, "string", Kind::Str, genr, title);
    let parents = i64::try_from(sections / 2).unwrap_or(0).max(1);
    vec![
        int("ID", Gen::Id, "ID").ro(),
        int(
            "CATALOG_ID",
            Gen::Const(super::model::Val::Int(CATALOG_ID)),
            "Catalog",
        ),
        int(
            "SECTION_ID",
            Gen::IntRange(1, parents, 60),
            "Parent section",
        ),
        text(
            "NAME",
            Gen::Word(&["Смартфоны", "Services «VIP»", "Доставка"], 0),
            "Name",
        )
        .req(),
        text("XML_ID", Gen::Word(&["sec-1", ""], 50), "External code"),
        text("CODE", Gen::Word(&["phones", "services"], 30), "Code"),
    ]
}

impl PortalData {
    /// The product catalog: `products` products in `sections` sections.
    pub(crate) fn add_product_catalog(&mut self, products: u64, sections: u64) {
        self.insert_lazy(
            PRODUCTS,
            TableKind::Product,
            None,
            product_fields(sections),
            products,
        );
        self.insert_lazy(
            SECTIONS,
            TableKind::ProductSection,
            None,
            section_fields(sections),
            sections,
        );
    }
}
