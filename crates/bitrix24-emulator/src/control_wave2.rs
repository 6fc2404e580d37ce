//! Control operations added with the second-wave entities (issue #12): new rows in generated
//! tables, so tests can check additions as well as edits and deletions.

use super::DemoPortalError;
use super::control::PortalControl;
use super::model::Val;
use super::store::{PortalData, modify_field};

impl PortalControl {
    /// Appends `n` generated rows to a CRM table (created and modified now, so an incremental
    /// load must pick them up); a table with stage history gets their creation records too.
    /// Returns the new ids.
    pub fn add_rows(&self, table: &str, n: u64) -> Result<Vec<u64>, DemoPortalError> {
        let mut st = self.lock();
        let now = st.clock.now().floor() as i64;
        let t = st
            .data
            .tables
            .get_mut(table)
            .ok_or_else(|| DemoPortalError::UnknownTable(table.to_string()))?;
        if t.materialized.is_some() {
            return Err(DemoPortalError::Config(format!(
                "table {table} is reference data: rows cannot be appended"
            )));
        }
        if t.generated_rows == 0 {
            t.generated_rows = t.max_id;
        }
        let first = t.max_id + 1;
        t.max_id += n;
        let ids: Vec<u64> = (first..=t.max_id).collect();
        let stamps: Vec<&'static str> = ["CREATED_TIME", "DATE_CREATE", "MOVED_TIME"]
            .into_iter()
            .filter(|c| t.field(c).is_some())
            .chain(modify_field(t))
            .collect();
        for id in &ids {
            for code in &stamps {
                t.set_override(*id, code, Val::DateTime(now));
            }
        }
        let history = t
            .entity_type_id
            .map(PortalData::history_table_for)
            .filter(|_| {
                matches!(
                    t.kind,
                    super::model::TableKind::Dynamic | super::model::TableKind::Crm
                )
            });
        if let Some(h) = history.and_then(|h| st.data.tables.get_mut(&h)) {
            // Two records per owner: creation and the current stage (`generate::hist_value`).
            if h.generated_rows == 0 {
                h.generated_rows = h.max_id;
            }
            h.max_id = (first + n - 1) * 2;
        }
        Ok(ids)
    }
}
