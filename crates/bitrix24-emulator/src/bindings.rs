//! Activity bindings (`crm.activity.binding.list`, EN
//! api-reference/crm/timeline/activities/binding/): the CRM items an activity is bound to,
//! `[{entityTypeId, entityId}]`, one unpaged call per activity (`activityId` required;
//! `NOT_FOUND` "Element not found" for an activity that does not exist). Binding `n` belongs
//! to activity `(n-1)/2 + 1`: a deal (its owner, if it has one), then a contact. Rows carry no activity id; the
//! table keeps it (`ACTIVITY_ID`) and the key a connector composes (`BINDING_KEY`,
//! `activityId:entityTypeId:entityId`) as ground truth.

use super::fields::fd;
use super::json_out::J;
use super::model::PortalData;
use super::model::{BindingPart, FieldDef, Gen, Kind, LegacyVis, TableKind, Val};

/// The portal table.
pub(crate) const TABLE: &str = "activity_binding";
const PER_ACTIVITY: u64 = 2;
const CONTACT: i64 = 3;

fn fields() -> Vec<FieldDef> {
    let int = |code: &str, part: BindingPart, title: &str| {
        fd(code, "integer", Kind::Int, Gen::Binding(part), title)
    };
    vec![
        int("ACTIVITY_ID", BindingPart::Activity, "Activity").immutable(),
        int("ENTITY_TYPE_ID", BindingPart::EntityType, "CRM object type"),
        int("ENTITY_ID", BindingPart::EntityId, "CRM object"),
        fd(
            "BINDING_KEY",
            "string",
            Kind::Str,
            Gen::Binding(BindingPart::Key),
            "Binding key",
        )
        .vis(LegacyVis::None)
        .no_item(),
    ]
}

/// The activity of binding `id`.
pub(crate) fn activity_of(id: u64) -> u64 {
    (id.max(1) - 1) / PER_ACTIVITY + 1
}

/// One part of binding `id` as generated (an edit overrides the owner parts).
pub(crate) fn value(data: &PortalData, id: u64, part: BindingPart) -> Val {
    let activity = activity_of(id);
    match part {
        BindingPart::Activity => Val::Int(activity as i64),
        BindingPart::EntityType if (id - 1).is_multiple_of(PER_ACTIVITY) => Val::Int(2),
        BindingPart::EntityType => Val::Int(CONTACT),
        // The activity's owner deal, or (an activity generated without one) some deal.
        BindingPart::EntityId if (id - 1).is_multiple_of(PER_ACTIVITY) => {
            match activity_field(data, activity, "OWNER_ID") {
                Val::Int(d) if d > 0 => Val::Int(d),
                _ => {
                    let deals = data.tables.get("deal").map_or(1, |t| t.spread).max(1);
                    Val::Int(((activity * 5) % deals + 1) as i64)
                }
            }
        }
        BindingPart::EntityId => {
            let contacts = data.tables.get("contact").map_or(1, |t| t.spread).max(1);
            Val::Int(((activity * 3) % contacts + 1) as i64)
        }
        BindingPart::Key => {
            let Some(t) = data.tables.get(TABLE) else {
                return Val::Null;
            };
            let part = |code: &str| match t.field(code).map(|f| data.value(t, id, f)) {
                Some(Val::Int(i)) => i.to_string(),
                _ => String::new(),
            };
            Val::Str(format!(
                "{}:{}:{}",
                part("ACTIVITY_ID"),
                part("ENTITY_TYPE_ID"),
                part("ENTITY_ID")
            ))
        }
    }
}

fn activity_field(data: &PortalData, activity: u64, code: &str) -> Val {
    let Some(t) = data.tables.get("activity") else {
        return Val::Null;
    };
    match t.field(code) {
        Some(f) => data.value(t, activity, f),
        None => Val::Null,
    }
}

impl PortalData {
    /// Two bindings per activity.
    pub(crate) fn add_activity_bindings(&mut self) {
        let activities = self.tables.get("activity").map_or(0, |t| t.spread);
        self.insert_lazy(
            TABLE,
            TableKind::ActivityBinding,
            None,
            fields(),
            activities * PER_ACTIVITY,
        );
    }

    /// The bindings of one activity as the method prints them; `None` if the activity does
    /// not exist.
    pub(crate) fn bindings_of(&self, activity: u64) -> Option<Vec<J>> {
        if !self.tables.get("activity")?.exists(activity) {
            return None;
        }
        let t = self.tables.get(TABLE)?;
        let (ft, fe) = (t.field("ENTITY_TYPE_ID")?, t.field("ENTITY_ID")?);
        let int = |v: Val| match v {
            Val::Int(i) => J::Int(i),
            _ => J::Null,
        };
        // Generated bindings of `activity` are `2a-1, 2a`; rows added later follow the spread.
        let first = (activity - 1) * PER_ACTIVITY + 1;
        let generated = (first..first + PER_ACTIVITY).filter(|id| *id <= t.spread);
        let added = (t.spread + 1..=t.max_id).filter(|id| activity_of(*id) == activity);
        let rows = generated
            .chain(added)
            .filter(|id| t.exists(*id))
            .map(|id| {
                J::obj([
                    ("entityTypeId", int(self.value(t, id, ft))),
                    ("entityId", int(self.value(t, id, fe))),
                ])
            })
            .collect();
        Some(rows)
    }

    /// Activities deleted lose their bindings.
    pub(crate) fn drop_bindings_of(&mut self, table: &str, activity_ids: &[u64]) {
        if table != "activity" {
            return;
        }
        if let Some(t) = self.tables.get_mut(TABLE) {
            let doomed: Vec<u64> = t
                .ids()
                .filter(|id| activity_ids.contains(&activity_of(*id)))
                .collect();
            for id in doomed {
                t.delete(id);
            }
        }
    }
}
