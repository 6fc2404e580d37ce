//! In-process control of a running portal: data mutations, faults, counters, ground truth.
//! The same operations are exposed over HTTP under `/_control/...` (see `server.rs`).

mod product_rows;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as SJ, json};

use crate::config::{BillingSettings, PortalConfig, RenderStyle, SmartStageHistory};
use crate::error::DemoPortalError;
use crate::events::{self, Change, EmitCtx, EventsState};
use crate::fields::uf_gen_for;
use crate::limits::{LeakyBucket, OperatingLimiter, SimClock};
use crate::model::Gen;
use crate::model::{FieldDef, FmVal, Kind, Table, Val, modify_field};
use crate::oauth::OAuthState;
use crate::render::{self, Cell};
use crate::state::{Counters, Fault, Shared, State};
use crate::store::PortalData;

/// A user field to add through the control API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserFieldSpec {
    /// Field code; generated (`UF_CRM_…`) when absent.
    #[serde(default)]
    pub code: Option<String>,
    /// `string`, `integer`, `double`, `boolean`, `date`, `datetime`, `enumeration`, `money`, `url`,
    /// `address`, `file`, `employee`, `crm`, `crm_status`, `iblock_element`, `rest_…`.
    pub user_type: String,
    #[serde(default)]
    pub multiple: bool,
    #[serde(default)]
    pub label: Option<String>,
    /// Fill existing rows with generated values (otherwise they stay empty).
    #[serde(default = "yes")]
    pub fill: bool,
}

fn yes() -> bool {
    true
}

/// Handle to a running portal's state (cheap to clone).
#[derive(Debug, Clone)]
pub struct PortalControl {
    pub(crate) shared: Arc<Shared>,
}

fn unknown_table(name: &str) -> DemoPortalError {
    DemoPortalError::UnknownTable(name.to_string())
}

impl PortalControl {
    pub(crate) fn new(cfg: PortalConfig, base_url: String) -> PortalControl {
        let data = PortalData::build(cfg.seed, &cfg.sizes);
        let clock = SimClock::new(cfg.time_scale);
        let oauth = OAuthState::new(&cfg.oauth, clock.now());
        let state = State {
            data,
            clock,
            bucket: LeakyBucket::default(),
            operating: OperatingLimiter::default(),
            billing: cfg.billing(),
            counters: Counters::default(),
            faults: Vec::new(),
            oauth,
            crm_admin: cfg.crm_admin,
            rng: cfg.seed ^ 0x5eed,
            missing_methods: cfg
                .missing_methods
                .iter()
                .map(|m| m.to_ascii_lowercase())
                .collect(),
            smart_stage_history: cfg.smart_stage_history,
            productrow_owner_arrays: cfg.productrow_owner_arrays,
            denied_scopes: cfg.denied_scopes.iter().cloned().collect(),
            events: EventsState::default(),
            app_context: false,
        };
        PortalControl {
            shared: Arc::new(Shared {
                cfg,
                base_url,
                state: Mutex::new(state),
                events_wake: tokio::sync::Notify::new(),
            }),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock must not take the portal down for other tests.
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn config(&self) -> PortalConfig {
        self.shared.cfg.clone()
    }

    /// Current portal time (unix seconds, simulated clock).
    pub fn now(&self) -> f64 {
        self.lock().clock.now()
    }

    /// Move the simulated clock forward.
    pub fn advance_clock(&self, secs: f64) {
        self.lock().clock.advance(secs);
    }

    /// The billing settings in force.
    pub fn billing(&self) -> BillingSettings {
        self.lock().billing
    }

    /// Switches how calls are billed and reported from the next call on. Figures already
    /// billed stay on the keys they were billed to.
    pub fn set_billing(&self, billing: BillingSettings) -> Result<(), DemoPortalError> {
        billing.validate()?;
        self.lock().billing = billing;
        Ok(())
    }

    /// Make the webhook user a CRM admin or not (`crm.type.list` → ACCESS_DENIED when not).
    pub fn set_crm_admin(&self, admin: bool) {
        self.lock().crm_admin = admin;
    }

    /// Make `method` answer `ERROR_METHOD_NOT_FOUND` (as on a plan or version without it), or
    /// serve it again.
    pub fn set_method_available(&self, method: &str, available: bool) {
        let m = method.to_ascii_lowercase();
        let mut st = self.lock();
        if available {
            st.missing_methods.remove(&m);
        } else {
            st.missing_methods.insert(m);
        }
    }

    /// How `crm.stagehistory.list` answers for smart processes from now on.
    pub fn set_smart_stage_history(&self, mode: SmartStageHistory) {
        self.lock().smart_stage_history = mode;
    }

    /// Take a scope from the credentials (`insufficient_scope` for its methods), or give it back.
    pub fn set_scope_denied(&self, scope: &str, denied: bool) {
        let mut st = self.lock();
        if denied {
            st.denied_scopes.insert(scope.to_string());
        } else {
            st.denied_scopes.remove(scope);
        }
    }

    /// The current availability switches: missing methods, smart-process stage history, denied
    /// scopes.
    pub fn availability(&self) -> SJ {
        let st = self.lock();
        json!({
            "missing_methods": st.missing_methods,
            "smart_stage_history": st.smart_stage_history.name(),
            "denied_scopes": st.denied_scopes,
        })
    }

    /// Names of all tables (`deal`, `lead`, `contact`, `company`, `dynamic_<etid>`, `user`, ...).
    pub fn tables(&self) -> Vec<String> {
        self.lock().data.tables.keys().cloned().collect()
    }

    /// Bump the modification time of rows to now (or to `modify_time`, unix seconds) and set
    /// optional values given in canonical ground-truth form. Returns the number of rows changed.
    pub fn modify_rows(
        &self,
        table: &str,
        ids: &[u64],
        set: &Map<String, SJ>,
        modify_time: Option<i64>,
    ) -> Result<usize, DemoPortalError> {
        let mut st = self.lock();
        let now = st.clock.now().floor() as i64;
        let t = st
            .data
            .tables
            .get(table)
            .ok_or_else(|| unknown_table(table))?;
        let mut parsed = Vec::new();
        for (code, v) in set {
            let f = t.field(code).ok_or_else(|| DemoPortalError::UnknownField {
                table: table.into(),
                field: code.clone(),
            })?;
            parsed.push((code.clone(), parse_canonical(f, v)?));
        }
        let mf = modify_field(t);
        let t = st
            .data
            .tables
            .get_mut(table)
            .ok_or_else(|| unknown_table(table))?;
        let mut n = 0;
        for id in ids {
            if !t.exists(*id) {
                continue;
            }
            for (code, v) in &parsed {
                t.set_override(*id, code, v.clone());
            }
            if let Some(mf) = mf {
                t.set_override(*id, mf, Val::DateTime(modify_time.unwrap_or(now)));
            }
            n += 1;
        }
        let changed: Vec<u64> = ids
            .iter()
            .copied()
            .filter(|id| st.data.tables.get(table).is_some_and(|t| t.exists(*id)))
            .collect();
        self.emit(&mut st, table, &changed, Change::Update);
        Ok(n)
    }

    /// Append `n` generated rows to a lazy table (a created task, …), modified now; returns
    /// their ids. Existing rows keep every value (`Table::spread`).
    /// Appends `n` generated rows to a generated table, created and modified now (an
    /// incremental load must pick them up); a table with stage history gets their creation
    /// records too, and their Add events are queued. Returns the new ids.
    pub fn add_rows(&self, table: &str, n: u64) -> Result<Vec<u64>, DemoPortalError> {
        let mut st = self.lock();
        let now = st.clock.now().floor() as i64;
        let t = st
            .data
            .tables
            .get_mut(table)
            .ok_or_else(|| unknown_table(table))?;
        if t.materialized.is_some() {
            return Err(DemoPortalError::Config(format!(
                "table {table} is not generated; rows cannot be added"
            )));
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
        if let Some((field, before)) = crate::work::appended_time(t) {
            for id in &ids {
                t.set_override(*id, field, Val::DateTime(now - before));
            }
        }
        let history = t
            .entity_type_id
            .map(PortalData::history_table_for)
            .filter(|_| {
                matches!(
                    t.kind,
                    crate::model::TableKind::Dynamic | crate::model::TableKind::Crm
                )
            });
        if let Some(h) = history.and_then(|h| st.data.tables.get_mut(&h)) {
            // Two records per owner: creation and the current stage (`generate::hist_value`).
            h.max_id = (first + n - 1) * 2;
        }
        self.emit(&mut st, table, &ids, Change::Add);
        Ok(ids)
    }

    pub fn delete_rows(&self, table: &str, ids: &[u64]) -> Result<usize, DemoPortalError> {
        let mut st = self.lock();
        let t = st
            .data
            .tables
            .get_mut(table)
            .ok_or_else(|| unknown_table(table))?;
        let deleted: Vec<u64> = ids.iter().copied().filter(|id| t.delete(*id)).collect();
        st.data.delete_dependents(table, ids);
        st.data.drop_product_rows_of(table, ids);
        st.data.drop_comments_of(table, ids);
        st.data.drop_bindings_of(table, ids);
        self.emit(&mut st, table, &deleted, Change::Delete);
        Ok(deleted.len())
    }

    /// Queues the events of changed rows and wakes the delivery of online ones.
    fn emit(&self, st: &mut State, table: &str, ids: &[u64], change: Change) {
        let ctx = self.emit_ctx();
        let mut online = false;
        for id in ids {
            online |= events::emit(&mut st.events, st.clock.now(), &ctx, table, *id, change);
        }
        if online {
            self.shared.events_wake.notify_one();
        }
    }

    fn emit_ctx(&self) -> EmitCtx {
        let cfg = &self.shared.cfg;
        EmitCtx {
            base_url: self.shared.base_url.clone(),
            member_id: format!("{:032x}", crate::hash::mix(cfg.seed)),
            application_token: self.application_token(),
            access_token: cfg.oauth.access_token.clone(),
            refresh_token: cfg.oauth.refresh_token.clone(),
        }
    }

    /// The application token every online event of the demo app carries
    /// (`auth.application_token`), as a handler verifies it.
    pub fn application_token(&self) -> String {
        self.shared.cfg.application_token()
    }

    /// The event switches in force.
    pub fn event_settings(&self) -> events::EventSettings {
        self.lock().events.settings
    }

    /// Changes the event switches from the next call on.
    pub fn set_event_settings(&self, s: events::EventSettings) {
        self.lock().events.settings = s;
    }

    /// The offline queue as it is now (every record, leased or not).
    pub fn offline_queue(&self) -> Vec<events::OfflineRecord> {
        self.lock().events.queue.clone()
    }

    /// The bound handlers.
    pub fn event_handlers(&self) -> Vec<events::Handler> {
        self.lock().events.handlers.clone()
    }

    pub fn event_counters(&self) -> events::EventCounters {
        self.lock().events.counters.clone()
    }

    /// Add a smart process with `items` generated items; returns its entityTypeId.
    pub fn add_smart_process(
        &self,
        entity_type_id: Option<u32>,
        title: &str,
        items: u64,
    ) -> Result<u32, DemoPortalError> {
        let mut st = self.lock();
        if let Some(e) = entity_type_id
            && (e < 128 || st.data.type_for_etid(e).is_some())
        {
            return Err(DemoPortalError::Config(format!(
                "entityTypeId {e} is taken or reserved"
            )));
        }
        Ok(st.data.add_smart_process(entity_type_id, title, items))
    }

    pub fn remove_smart_process(&self, entity_type_id: u32) -> Result<(), DemoPortalError> {
        if self.lock().data.remove_smart_process(entity_type_id) {
            Ok(())
        } else {
            Err(DemoPortalError::NotFound(format!(
                "smart process {entity_type_id}"
            )))
        }
    }

    /// Add a user field to a CRM table; returns its code.
    pub fn add_user_field(
        &self,
        table: &str,
        spec: &UserFieldSpec,
    ) -> Result<String, DemoPortalError> {
        let mut st = self.lock();
        let t = st
            .data
            .tables
            .get(table)
            .ok_or_else(|| unknown_table(table))?;
        if !matches!(
            t.kind,
            crate::model::TableKind::Crm
                | crate::model::TableKind::Dynamic
                | crate::model::TableKind::Task
                | crate::model::TableKind::Requisite
        ) {
            return Err(DemoPortalError::Config(format!(
                "table {table} has no user fields"
            )));
        }
        if let Some(c) = &spec.code
            && !c.starts_with("UF_")
        {
            return Err(DemoPortalError::Config(
                "user field codes start with UF_".into(),
            ));
        }
        let label = spec
            .label
            .clone()
            .unwrap_or_else(|| format!("Поле {}", spec.user_type));
        let code = st
            .data
            .add_user_field(
                table,
                "X",
                &spec.user_type,
                spec.multiple,
                &label,
                uf_gen_for(&spec.user_type),
                spec.code.clone(),
            )
            .ok_or_else(|| DemoPortalError::Config("field already exists".into()))?;
        if !spec.fill
            && let Some(f) = st
                .data
                .tables
                .get_mut(table)
                .and_then(|t| t.fields.iter_mut().find(|f| f.code == code))
        {
            f.genr = Gen::Null;
        }
        Ok(code)
    }

    /// Remove a user field, as deleting it (or taking the webhook user's rights to it) does.
    pub fn remove_user_field(&self, table: &str, code: &str) -> Result<(), DemoPortalError> {
        if self.lock().data.remove_user_field(table, code) {
            Ok(())
        } else {
            Err(DemoPortalError::UnknownField {
                table: table.into(),
                field: code.into(),
            })
        }
    }

    /// Add an option to an enumeration UF; returns the option id.
    pub fn add_enum_option(
        &self,
        table: &str,
        field: &str,
        label: &str,
    ) -> Result<u64, DemoPortalError> {
        self.lock()
            .data
            .add_enum_option(table, field, label)
            .ok_or_else(|| DemoPortalError::UnknownField {
                table: table.into(),
                field: field.into(),
            })
    }

    pub fn inject_fault(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    pub fn faults(&self) -> Vec<Fault> {
        self.lock().faults.clone()
    }

    pub fn counters(&self) -> Counters {
        self.lock().counters.clone()
    }

    /// Reset counters (and the limiters, so a test starts from a clean bucket).
    pub fn reset_counters(&self) {
        let mut st = self.lock();
        st.counters = Counters::default();
        st.bucket = LeakyBucket::default();
        st.operating.reset();
    }

    /// Every row of a table in canonical form, ordered by id.
    pub fn ground_truth(&self, table: &str) -> Result<Vec<Map<String, SJ>>, DemoPortalError> {
        let st = self.lock();
        let t = st
            .data
            .tables
            .get(table)
            .ok_or_else(|| unknown_table(table))?;
        Ok(truth_rows(&st.data, t, self.shared.cfg.utc_offset_secs))
    }

    /// Ground truth of every table.
    pub fn ground_truth_all(&self) -> BTreeMap<String, Vec<Map<String, SJ>>> {
        let st = self.lock();
        st.data
            .tables
            .values()
            .map(|t| {
                (
                    t.name.clone(),
                    truth_rows(&st.data, t, self.shared.cfg.utc_offset_secs),
                )
            })
            .collect()
    }

    /// The catalog truth: tables, fields (type, multiple, labels), enumeration options, types.
    pub fn catalog(&self) -> SJ {
        let st = self.lock();
        let tables: Vec<SJ> = st.data.tables.values().map(catalog_table).collect();
        let types: Vec<SJ> = st
            .data
            .types
            .iter()
            .map(|t| json!({"id": t.id, "entity_type_id": t.entity_type_id, "title": t.title, "table": PortalData::table_name_for(t.entity_type_id)}))
            .collect();
        json!({"tables": tables, "smart_processes": types, "utc_offset_secs": self.shared.cfg.utc_offset_secs})
    }
}

fn truth_rows(data: &PortalData, t: &Table, offset: i32) -> Vec<Map<String, SJ>> {
    t.ids()
        .map(|id| {
            let cell = Cell {
                table: &t.name,
                entity_type_id: t.entity_type_id.unwrap_or(0),
                id,
                offset,
                style: RenderStyle::default(),
            };
            let mut row = Map::new();
            for f in t.fields.iter().filter(|f| !f.code.starts_with('_')) {
                for (k, v) in render::truth(f, &data.value(t, id, f), &cell) {
                    row.insert(k, v);
                }
            }
            row
        })
        .collect()
}

fn catalog_table(t: &Table) -> SJ {
    let fields: Vec<SJ> = t
        .fields
        .iter()
        .filter(|f| !f.code.starts_with('_'))
        .map(|f| {
            let options: Vec<SJ> =
                f.uf.as_ref()
                    .map(|u| {
                        u.options
                            .iter()
                            .map(|o| json!({"id": o.id, "value": o.value, "sort": o.sort}))
                            .collect()
                    })
                    .unwrap_or_default();
            json!({
                "code": f.code,
                "item_name": f.item,
                "item_upper_name": f.item.as_ref().map(|_| f.item_upper.clone()),
                "type": f.api_type,
                "multiple": f.multiple,
                "is_uf": f.is_uf(),
                "title": f.title,
                "label": f.uf.as_ref().map(|u| u.label.clone()),
                "status_type": f.status_type,
                "legacy": format!("{:?}", f.legacy),
                "options": options,
            })
        })
        .collect();
    json!({
        "name": t.name,
        "kind": format!("{:?}", t.kind),
        "entity_type_id": t.entity_type_id,
        "rows": t.row_count(),
        "fields": fields,
    })
}

fn bad(f: &FieldDef, m: &str) -> DemoPortalError {
    DemoPortalError::InvalidValue {
        field: f.code.clone(),
        message: m.into(),
    }
}

fn parse_amount(f: &FieldDef, v: &SJ) -> Result<i64, DemoPortalError> {
    let s = match v {
        SJ::String(s) => s.clone(),
        SJ::Number(n) => n.to_string(),
        _ => return Err(bad(f, "expected an amount")),
    };
    let x: f64 = s.trim().parse().map_err(|_| bad(f, "expected an amount"))?;
    Ok((x * 100.0).round() as i64)
}

/// Parse a canonical (ground-truth form) JSON value into a typed value for field `f`.
pub(crate) fn parse_canonical(f: &FieldDef, v: &SJ) -> Result<Val, DemoPortalError> {
    if v.is_null() {
        return Ok(Val::Null);
    }
    if f.kind == Kind::Fm {
        let arr = v.as_array().ok_or_else(|| bad(f, "expected an array"))?;
        let mut out = Vec::new();
        for (i, x) in arr.iter().enumerate() {
            out.push(FmVal {
                id: 900_000 + i as u64,
                type_id: f.code.clone(),
                value_type: x
                    .get("value_type")
                    .and_then(SJ::as_str)
                    .unwrap_or("WORK")
                    .to_string(),
                value: x
                    .get("value")
                    .and_then(SJ::as_str)
                    .ok_or_else(|| bad(f, "value missing"))?
                    .to_string(),
            });
        }
        return Ok(Val::Fm(out));
    }
    if f.multiple {
        let arr = v.as_array().ok_or_else(|| bad(f, "expected an array"))?;
        return arr
            .iter()
            .map(|x| parse_scalar(f, x))
            .collect::<Result<Vec<_>, _>>()
            .map(Val::List);
    }
    parse_scalar(f, v)
}

fn parse_scalar(f: &FieldDef, v: &SJ) -> Result<Val, DemoPortalError> {
    let as_str = || v.as_str().ok_or_else(|| bad(f, "expected a string"));
    Ok(match f.kind {
        Kind::Int => Val::Int(v.as_i64().ok_or_else(|| bad(f, "expected an integer"))?),
        Kind::Enum => Val::Enum(v.as_u64().ok_or_else(|| bad(f, "expected an option id"))?),
        Kind::File => match v {
            SJ::Number(n) => Val::File(n.as_u64().ok_or_else(|| bad(f, "expected a file id"))?),
            _ => Val::Str(as_str()?.to_string()),
        },
        Kind::Amount => Val::Amount(parse_amount(f, v)?),
        Kind::Float => Val::Float(v.as_f64().ok_or_else(|| bad(f, "expected a number"))?),
        Kind::YesNo | Kind::UfBool | Kind::JsonBool => {
            Val::Bool(v.as_bool().ok_or_else(|| bad(f, "expected a boolean"))?)
        }
        Kind::Date => Val::Date(
            NaiveDate::parse_from_str(as_str()?, "%Y-%m-%d")
                .map_err(|_| bad(f, "expected YYYY-MM-DD"))?,
        ),
        Kind::DateTime | Kind::OrmObject => Val::DateTime(
            NaiveDateTime::parse_from_str(as_str()?, "%Y-%m-%d %H:%M:%S")
                .map_err(|_| bad(f, "expected YYYY-MM-DD hh:mm:ss (UTC)"))?
                .and_utc()
                .timestamp(),
        ),
        Kind::Money => {
            let s = as_str()?;
            let (amount, cur) = s
                .split_once('|')
                .ok_or_else(|| bad(f, "expected \"amount|CUR\""))?;
            Val::Money {
                cents: parse_amount(f, &SJ::String(amount.into()))?,
                currency: cur.to_string(),
            }
        }
        Kind::Binding => Val::Binding(as_str()?.to_string()),
        Kind::Str | Kind::Fm => Val::Str(as_str()?.to_string()),
        // JSON text, or the JSON value itself.
        Kind::Json => Val::Str(v.as_str().map_or_else(|| v.to_string(), str::to_string)),
    })
}
