//! How a method's rows encode values.

/// The value style of a Bitrix24 list method (the client maps each method to one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ValueStyle {
    /// `crm.deal/lead/contact/company.list`, `crm.activity.list`, `crm.status.list`,
    /// `user.get`, `department.get`…: strings for everything, `""` empty dates, `false` for
    /// an empty multiple UF, `"1"`/`"0"` boolean UFs, multifields under `PHONE`, `EMAIL`…
    #[default]
    Legacy,
    /// `crm.item.*`, `crm.type.*`, `crm.category.*`: JSON numbers, `"Y"`/`"N"` booleans,
    /// `null`s, camelCase keys, multifields in `fm`, file UFs as `{"id","url"}`.
    Typed,
}
