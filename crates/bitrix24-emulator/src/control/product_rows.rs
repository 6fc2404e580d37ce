//! Product rows through the control API: adding or removing an owner's row touches the
//! owner's modification time, as `crm.item.productrow.*` saves the item (its amount is
//! recalculated).

use super::PortalControl;
use crate::error::DemoPortalError;
use crate::model::{OwnerPart, PortalData, Val, modify_field};
use crate::productrows::{TABLE, etid_of_short, owner_value, short_code};

impl PortalControl {
    /// Adds a generated product row to an owner (`deal`, `quote`, …); the owner's modification
    /// time moves to now. Returns the row id.
    pub fn add_product_row(
        &self,
        owner_table: &str,
        owner_id: u64,
    ) -> Result<u64, DemoPortalError> {
        let mut st = self.lock();
        let now = st.clock.now().floor() as i64;
        let etid = owner_etid(&st.data, owner_table, owner_id)?;
        let t = st
            .data
            .tables
            .get_mut(TABLE)
            .ok_or_else(|| DemoPortalError::UnknownTable(TABLE.into()))?;
        t.max_id += 1;
        let id = t.max_id;
        t.set_override(id, "OWNER_ID", Val::Int(owner_id as i64));
        t.set_override(id, "OWNER_TYPE", Val::Str(short_code(etid)));
        touch(&mut st.data, owner_table, owner_id, now);
        Ok(id)
    }

    /// Removes a product row from its owner; the owner's modification time moves to now.
    pub fn delete_product_row(&self, row_id: u64) -> Result<(), DemoPortalError> {
        let mut st = self.lock();
        let now = st.clock.now().floor() as i64;
        let owner = match (
            owner_value(&st.data, row_id, OwnerPart::Type),
            owner_value(&st.data, row_id, OwnerPart::Id),
        ) {
            (Val::Str(short), Val::Int(id)) => etid_of_short(&short).map(|e| (e, id as u64)),
            _ => None,
        };
        let deleted = st
            .data
            .tables
            .get_mut(TABLE)
            .is_some_and(|t| t.delete(row_id));
        let Some((etid, owner_id)) = owner.filter(|_| deleted) else {
            return Err(DemoPortalError::NotFound(format!("product row {row_id}")));
        };
        touch(
            &mut st.data,
            &PortalData::table_name_for(etid),
            owner_id,
            now,
        );
        Ok(())
    }

    /// The product-row ids of one owner (as `crm.item.productrow.list` would list them).
    pub fn product_rows_of(
        &self,
        owner_table: &str,
        owner_id: u64,
    ) -> Result<Vec<u64>, DemoPortalError> {
        let st = self.lock();
        let etid = owner_etid(&st.data, owner_table, owner_id)?;
        Ok(st.data.product_rows_of(etid, owner_id))
    }
}

fn owner_etid(data: &PortalData, table: &str, id: u64) -> Result<u32, DemoPortalError> {
    let t = data
        .tables
        .get(table)
        .ok_or_else(|| DemoPortalError::UnknownTable(table.into()))?;
    let etid = t
        .entity_type_id
        .filter(|e| {
            data.productrow_segments
                .iter()
                .any(|s| s.entity_type_id == *e)
        })
        .ok_or_else(|| DemoPortalError::Config(format!("{table} items have no product rows")))?;
    if !t.exists(id) {
        return Err(DemoPortalError::NotFound(format!("{table} {id}")));
    }
    Ok(etid)
}

fn touch(data: &mut PortalData, table: &str, id: u64, now: i64) {
    if let Some(t) = data.tables.get_mut(table)
        && let Some(mf) = modify_field(t)
    {
        t.set_override(id, mf, Val::DateTime(now));
    }
}
