//! Portal state: all tables, smart-process types, reference data caches, and mutations.

use std::collections::{BTreeMap, HashMap};

use super::config::DataSizes;
use super::fields::{self, fd, history_fields, plain};
use super::generate;
use super::hash;
use super::model::{EnumOpt, FieldDef, Gen, Kind, LegacyVis, Table, TableKind, UfGen, Val};
pub(crate) use super::model::{PortalData, SpaType};

const ENUM_LABELS: &[&str] = &[
    "Вариант А",
    "Option \"B\"",
    "<script>alert(1)</script>",
    "🙂 smile",
];

impl PortalData {
    pub(crate) fn table_name_for(etid: u32) -> String {
        match etid {
            1 => "lead".into(),
            2 => "deal".into(),
            3 => "contact".into(),
            4 => "company".into(),
            n => match super::crm_docs::table_name(n) {
                Some(name) => name.into(),
                None => format!("dynamic_{n}"),
            },
        }
    }
    pub(crate) fn build(seed: u64, sizes: &DataSizes) -> PortalData {
        let mut d = PortalData {
            seed,
            tables: BTreeMap::new(),
            types: Vec::new(),
            next_uf_id: 5800,
            next_enum_id: 3150,
            next_type_id: 1,
            next_category_id: 1,
            stage_cache: HashMap::new(),
            category_cache: HashMap::new(),
            productrow_segments: Vec::new(),
        };
        d.insert_reference_tables(sizes.deal_categories);
        let parents: Vec<(u32, String)> = sizes
            .smart_processes
            .iter()
            .map(|s| (s.entity_type_id, s.title.clone()))
            .collect();
        let crm: [(&str, u32, Vec<FieldDef>, u64); 4] = [
            ("lead", 1, fields::lead_fields(&parents), sizes.leads),
            ("deal", 2, fields::deal_fields(&parents), sizes.deals),
            (
                "contact",
                3,
                fields::contact_fields(&parents),
                sizes.contacts,
            ),
            (
                "company",
                4,
                fields::company_fields(&parents),
                sizes.companies,
            ),
        ];
        for (name, etid, flds, n) in crm {
            d.insert_lazy(name, TableKind::Crm, Some(etid), flds, n);
            d.add_standard_ufs(name);
        }
        d.insert_lazy(
            "user",
            TableKind::User,
            None,
            user_fields(),
            sizes.users.max(1),
        );
        d.insert_lazy(
            "department",
            TableKind::Department,
            None,
            department_fields(),
            sizes.departments.max(1),
        );
        d.insert_lazy(
            "activity",
            TableKind::Activity,
            None,
            activity_fields(),
            sizes.activities,
        );
        d.insert_lazy(
            "stagehistory_deal",
            TableKind::StageHistory,
            Some(2),
            history_fields(false),
            sizes.deals * 2,
        );
        d.insert_lazy(
            "stagehistory_lead",
            TableKind::StageHistory,
            Some(1),
            history_fields(true),
            sizes.leads * 2,
        );
        for sp in &sizes.smart_processes {
            d.add_smart_process(Some(sp.entity_type_id), &sp.title, sp.items);
        }
        // Beyond CRM: tasks, calls, workgroups (`work.rs`).
        d.add_work_tables(sizes);
        d.add_quotes_and_invoices(sizes.quotes, sizes.smart_invoices);
        d.add_product_rows();
        d.add_product_catalog(sizes.products, sizes.product_sections);
        d.add_requisites(sizes.requisites, sizes.requisite_banks);
        d.add_addresses(sizes.addresses);
        d.add_timeline_comments(sizes.timeline_comments);
        d.add_activity_bindings();
        d.rebuild_caches();
        d
    }

    pub(crate) fn insert_lazy(
        &mut self,
        name: &str,
        kind: TableKind,
        etid: Option<u32>,
        fields: Vec<FieldDef>,
        n: u64,
    ) {
        self.tables.insert(
            name.to_string(),
            Table {
                name: name.to_string(),
                kind,
                entity_type_id: etid,
                salt: hash::salt(name),
                fields,
                max_id: n,
                spread: n,
                deleted: Default::default(),
                overrides: Default::default(),
                materialized: None,
            },
        );
    }

    pub(crate) fn insert_materialized(
        &mut self,
        name: &str,
        kind: TableKind,
        fields: Vec<FieldDef>,
    ) {
        self.tables.insert(
            name.to_string(),
            Table {
                name: name.to_string(),
                kind,
                entity_type_id: None,
                salt: hash::salt(name),
                fields,
                max_id: 0,
                spread: 0,
                deleted: Default::default(),
                overrides: Default::default(),
                materialized: Some(BTreeMap::new()),
            },
        );
    }

    pub(crate) fn push_row(&mut self, table: &str, row: Vec<Val>) {
        if let Some(t) = self.tables.get_mut(table)
            && let Some(rows) = t.materialized.as_mut()
        {
            let key = rows.keys().next_back().map_or(1, |k| k + 1);
            rows.insert(key, row);
            t.max_id = key;
            t.spread = key;
        }
    }

    fn insert_reference_tables(&mut self, deal_categories: u32) {
        self.insert_materialized("status", TableKind::Status, status_fields());
        self.insert_materialized("category", TableKind::Category, category_fields());
        self.insert_materialized("currency", TableKind::Currency, currency_fields());
        // Lead statuses and deal stages of the default pipeline.
        self.add_stages(
            "STATUS",
            None,
            &[
                ("NEW", "Не обработан", "P"),
                ("IN_PROCESS", "В работе", "P"),
                ("PROCESSED", "Обработан", "P"),
                ("CONVERTED", "Качественный лид", "S"),
                ("JUNK", "Некачественный лид", "F"),
            ],
        );
        self.push_category(2, 0, "General", true);
        self.add_deal_stages(0);
        for i in 1..=deal_categories {
            let id = self.next_category();
            self.push_category(2, id, &format!("Воронка \"{i}\" 🚀"), false);
            self.add_deal_stages(id);
        }
        let dicts: [(&str, &[&str]); 8] = [
            (
                "SOURCE",
                &["CALL", "WEB", "EMAIL", "ADVERTISING", "TRADE_SHOW", "SELF"],
            ),
            ("DEAL_TYPE", &["SALE", "COMPLEX", "GOODS", "SERVICES"]),
            ("CONTACT_TYPE", &["CLIENT", "SUPPLIER", "PARTNER", "OTHER"]),
            (
                "COMPANY_TYPE",
                &["CUSTOMER", "PARTNER", "RESELLER", "OTHER"],
            ),
            ("INDUSTRY", &["IT", "MANUFACTURING", "BANKING", "OTHER"]),
            ("EMPLOYEES", &["EMPLOYEES_1", "EMPLOYEES_2", "EMPLOYEES_3"]),
            ("HONORIFIC", &["HNR_RU_1", "HNR_RU_2"]),
            ("DEAL_STAGE_NONE", &[]),
        ];
        for (entity, codes) in dicts {
            for (i, c) in codes.iter().enumerate() {
                let name = format!(
                    "{} {}",
                    c.to_lowercase().replace('_', " "),
                    if i == 0 { "«основной»" } else { "" }
                );
                self.push_status(entity, c, name.trim(), (i as i64 + 1) * 10, None, None);
            }
        }
        for (i, (cur, full, base)) in [
            ("RUB", "Российский рубль", true),
            ("USD", "US Dollar", false),
            ("EUR", "Euro", false),
        ]
        .into_iter()
        .enumerate()
        {
            let amount = match cur {
                "USD" => 9000,
                "EUR" => 9800,
                _ => 100,
            };
            self.push_row(
                "currency",
                vec![
                    Val::Str(cur.into()),
                    Val::Int(1),
                    Val::Amount(amount),
                    Val::Int((i as i64 + 1) * 100),
                    Val::Bool(base),
                    Val::Str(full.into()),
                    Val::Str("ru".into()),
                    Val::Str(format!("# {cur}")),
                    Val::Int(2),
                    Val::DateTime(generate::DATA_START),
                ],
            );
        }
    }

    fn add_deal_stages(&mut self, cat: i64) {
        let entity = if cat == 0 {
            "DEAL_STAGE".to_string()
        } else {
            format!("DEAL_STAGE_{cat}")
        };
        let prefix = if cat == 0 {
            String::new()
        } else {
            format!("C{cat}:")
        };
        let stages = [
            ("NEW", "Новая", "P"),
            ("PREPARATION", "Подготовка документов", "P"),
            ("EXECUTING", "В работе", "P"),
            ("FINAL_INVOICE", "Final invoice", "P"),
            ("WON", "Сделка успешна", "S"),
            ("LOSE", "Сделка провалена", "F"),
        ];
        let owned: Vec<(String, &str, &str)> = stages
            .iter()
            .map(|(s, n, m)| (format!("{prefix}{s}"), *n, *m))
            .collect();
        for (i, (s, n, m)) in owned.iter().enumerate() {
            self.push_status(&entity, s, n, (i as i64 + 1) * 10, Some(cat), Some(m));
        }
    }

    pub(crate) fn add_stages(
        &mut self,
        entity: &str,
        cat: Option<i64>,
        stages: &[(&str, &str, &str)],
    ) {
        for (i, (s, n, m)) in stages.iter().enumerate() {
            self.push_status(entity, s, n, (i as i64 + 1) * 10, cat, Some(m));
        }
    }

    fn push_status(
        &mut self,
        entity: &str,
        status_id: &str,
        name: &str,
        sort: i64,
        cat: Option<i64>,
        sem: Option<&str>,
    ) {
        let semantics = match sem {
            Some("S") => Val::Str("S".into()),
            Some("F") => Val::Str("F".into()),
            _ => Val::Null,
        };
        let color = match sem {
            Some("S") => "#DBF199",
            Some("F") => "#FF5752",
            Some(_) => "#39A8EF",
            None => "",
        };
        let row = vec![
            Val::Null, // ID filled below
            Val::Str(entity.into()),
            Val::Str(status_id.into()),
            Val::Str(name.into()),
            Val::Str(name.into()),
            Val::Int(sort),
            Val::Bool(sem.is_some()),
            cat.filter(|c| *c > 0).map_or(Val::Null, Val::Int),
            if color.is_empty() {
                Val::Null
            } else {
                Val::Str(color.into())
            },
            semantics,
            Val::Str(sem.unwrap_or("").into()),
            status_extra(sem, color),
        ];
        self.push_row("status", row);
        if let Some(t) = self.tables.get_mut("status") {
            let id = t.max_id;
            if let Some(r) = t.materialized.as_mut().and_then(|m| m.get_mut(&id)) {
                r[0] = Val::Int(id as i64 + 100);
            }
        }
    }

    /// A new pipeline id: ids are unique across entity types (one table of pipelines), only
    /// the deal default pipeline 0 is not stored.
    pub(crate) fn next_category(&mut self) -> i64 {
        let id = self.next_category_id;
        self.next_category_id += 1;
        id
    }

    pub(crate) fn push_category(&mut self, etid: u32, id: i64, name: &str, default: bool) {
        self.push_row(
            "category",
            vec![
                Val::Int(id),
                Val::Int(i64::from(etid)),
                Val::Str(name.into()),
                Val::Int(if default { 300 } else { 200 + id }),
                Val::Bool(default),
                if default {
                    Val::Null
                } else {
                    Val::Str(String::new())
                },
                if default {
                    Val::Null
                } else {
                    Val::Str(String::new())
                },
            ],
        );
    }

    pub(crate) fn rebuild_caches(&mut self) {
        self.stage_cache.clear();
        self.category_cache.clear();
        if let Some(t) = self.tables.get("status")
            && let Some(rows) = &t.materialized
        {
            for row in rows.values() {
                if let (Some(Val::Str(e)), Some(Val::Str(s)), Some(Val::Str(m))) =
                    (row.get(1), row.get(2), row.get(10))
                    && !m.is_empty()
                {
                    self.stage_cache
                        .entry(e.clone())
                        .or_default()
                        .push((s.clone(), m.clone()));
                }
            }
        }
        if let Some(t) = self.tables.get("category")
            && let Some(rows) = &t.materialized
        {
            for row in rows.values() {
                if let (Some(Val::Int(id)), Some(Val::Int(etid))) = (row.first(), row.get(1)) {
                    self.category_cache
                        .entry(*etid as u32)
                        .or_default()
                        .push(*id);
                }
            }
        }
    }

    pub(crate) fn stages_for(&self, etid: u32, cat: i64) -> &[(String, String)] {
        let key = match etid {
            1 => "STATUS".to_string(),
            2 if cat == 0 => "DEAL_STAGE".to_string(),
            2 => format!("DEAL_STAGE_{cat}"),
            n => super::crm_docs::stage_entity(n, cat)
                .unwrap_or_else(|| format!("DYNAMIC_{n}_STAGE_{cat}")),
        };
        self.stage_cache.get(&key).map_or(&[], Vec::as_slice)
    }

    pub(crate) fn category_ids(&self, etid: u32) -> &[i64] {
        self.category_cache.get(&etid).map_or(&[], Vec::as_slice)
    }

    fn enum_options(&mut self, labels: &[&str]) -> Vec<EnumOpt> {
        labels
            .iter()
            .enumerate()
            .map(|(i, l)| {
                self.next_enum_id += 2;
                EnumOpt {
                    id: self.next_enum_id,
                    value: (*l).to_string(),
                    sort: (i as i64 + 1) * 10,
                    def: false,
                    xml_id: format!("{:032x}", hash::mix(self.next_enum_id)),
                }
            })
            .collect()
    }

    fn uf_code(&self, table: &str, suffix: &str, uf_id: u64) -> String {
        let ts = 1_721_244_000_000u64 + uf_id;
        match self.tables.get(table).and_then(|t| t.entity_type_id) {
            Some(etid) if etid > 4 => {
                let type_id = self
                    .types
                    .iter()
                    .find(|t| t.entity_type_id == etid)
                    .map_or(0, |t| t.id);
                format!("UF_CRM_{type_id}_{ts}")
            }
            _ if suffix == "STRING" => "UF_CRM_DEMO_STRING".to_string(),
            _ => format!("UF_CRM_{ts}"),
        }
    }

    fn add_standard_ufs(&mut self, table: &str) {
        for (suffix, user_type, multiple, label, genr) in fields::uf_specs() {
            self.add_user_field(table, suffix, user_type, multiple, label, genr, None);
        }
    }

    /// Add a UF; returns its code. `code` overrides the generated name.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn add_user_field(
        &mut self,
        table: &str,
        suffix: &str,
        user_type: &str,
        multiple: bool,
        label: &str,
        genr: UfGen,
        code: Option<String>,
    ) -> Option<String> {
        self.next_uf_id += 2;
        let uf_id = self.next_uf_id;
        let code = code.unwrap_or_else(|| self.uf_code(table, suffix, uf_id));
        let options = if user_type == "enumeration" {
            self.enum_options(ENUM_LABELS)
        } else {
            vec![]
        };
        let t = self.tables.get_mut(table)?;
        if t.field(&code).is_some() {
            return None;
        }
        let mut f = fields::uf_field(&code, user_type, multiple, label, genr, uf_id, options);
        if t.kind == TableKind::Dynamic {
            f.legacy = LegacyVis::None;
        }
        t.fields.push(f);
        Some(code)
    }

    /// Removes a user field (deleted in the portal, or hidden by a rights change); `false`
    /// when the table has no such user field.
    pub(crate) fn remove_user_field(&mut self, table: &str, code: &str) -> bool {
        let Some(t) = self.tables.get_mut(table) else {
            return false;
        };
        let Some(i) = t.fields.iter().position(|f| f.code == code && f.is_uf()) else {
            return false;
        };
        t.fields.remove(i);
        if let Some(rows) = t.materialized.as_mut() {
            for values in rows.values_mut() {
                if i < values.len() {
                    values.remove(i);
                }
            }
        }
        for over in t.overrides.values_mut() {
            over.retain(|(c, _)| c != code);
        }
        true
    }

    pub(crate) fn add_enum_option(&mut self, table: &str, field: &str, label: &str) -> Option<u64> {
        self.next_enum_id += 2;
        let id = self.next_enum_id;
        let t = self.tables.get_mut(table)?;
        let f = t.fields.iter_mut().find(|f| f.code == field)?;
        let uf = f.uf.as_mut()?;
        let sort = uf.options.last().map_or(10, |o| o.sort + 10);
        uf.options.push(EnumOpt {
            id,
            value: label.to_string(),
            sort,
            def: false,
            xml_id: format!("{:032x}", hash::mix(id)),
        });
        Some(id)
    }

    /// Add a smart process with `items` rows; returns its entityTypeId.
    pub(crate) fn add_smart_process(&mut self, etid: Option<u32>, title: &str, items: u64) -> u32 {
        let etid = etid.unwrap_or_else(|| {
            let max = self
                .types
                .iter()
                .map(|t| t.entity_type_id)
                .max()
                .unwrap_or(126);
            (max + 2).max(128)
        });
        let type_id = self.next_type_id;
        self.next_type_id += 1;
        let created = generate::DATA_START + i64::from(type_id) * 86_400;
        self.types.push(SpaType {
            id: type_id,
            entity_type_id: etid,
            title: title.to_string(),
            created,
            updated: created,
        });
        let cat = self.next_category();
        self.push_category(etid, cat, "Основная воронка", true);
        let entity = format!("DYNAMIC_{etid}_STAGE_{cat}");
        let pre = format!("DT{etid}_{cat}:");
        let stages: Vec<(String, &str, &str)> = [
            ("NEW", "Начало", "P"),
            ("PREPARATION", "Подготовка", "P"),
            ("SUCCESS", "Успех", "S"),
            ("FAIL", "Провал", "F"),
        ]
        .iter()
        .map(|(s, n, m)| (format!("{pre}{s}"), *n, *m))
        .collect();
        for (i, (s, n, m)) in stages.iter().enumerate() {
            self.push_status(&entity, s, n, (i as i64 + 1) * 10, Some(cat), Some(m));
        }
        let mut parents = vec![(2, "Сделка".to_string())];
        if let Some(first) = self.types.first().filter(|t| t.entity_type_id != etid) {
            parents.push((first.entity_type_id, first.title.clone()));
        }
        let name = Self::table_name_for(etid);
        self.insert_lazy(
            &name,
            TableKind::Dynamic,
            Some(etid),
            fields::dynamic_fields(etid, &parents),
            items,
        );
        self.add_standard_ufs(&name);
        // Smart processes have stages (`isStagesEnabled`), so `crm.stagehistory.list` answers
        // for them too: a creation and a last-move record per item, as for deals.
        self.insert_lazy(
            &Self::history_table_for(etid),
            TableKind::StageHistory,
            Some(etid),
            history_fields(false),
            items * 2,
        );
        self.rebuild_caches();
        etid
    }

    /// The stage-history table of an entityTypeId (`crm.stagehistory.list`).
    pub(crate) fn history_table_for(etid: u32) -> String {
        match etid {
            1 => "stagehistory_lead".into(),
            2 => "stagehistory_deal".into(),
            super::crm_docs::SMART_INVOICE => "stagehistory_smart_invoice".into(),
            n => format!("stagehistory_dynamic_{n}"),
        }
    }

    pub(crate) fn remove_smart_process(&mut self, etid: u32) -> bool {
        let before = self.types.len();
        self.types.retain(|t| t.entity_type_id != etid);
        if before == self.types.len() {
            return false;
        }
        self.tables.remove(&Self::table_name_for(etid));
        self.tables.remove(&Self::history_table_for(etid));
        let parent = format!("PARENT_ID_{etid}");
        for t in self.tables.values_mut() {
            t.fields.retain(|f| f.code != parent);
        }
        let prefix = format!("DYNAMIC_{etid}_");
        for (name, col, want) in [
            ("status", 1usize, None),
            ("category", 1usize, Some(i64::from(etid))),
        ] {
            if let Some(rows) = self
                .tables
                .get_mut(name)
                .and_then(|t| t.materialized.as_mut())
            {
                rows.retain(|_, r| match (want, r.get(col)) {
                    (None, Some(Val::Str(e))) => !e.starts_with(&prefix),
                    (Some(w), Some(Val::Int(e))) => *e != w,
                    _ => true,
                });
            }
        }
        self.rebuild_caches();
        true
    }

    pub(crate) fn type_for_etid(&self, etid: u32) -> Option<&SpaType> {
        self.types.iter().find(|t| t.entity_type_id == etid)
    }

    /// Table by entityTypeId (1,2,3,4 or a smart process).
    pub(crate) fn table_for_etid(&self, etid: u32) -> Option<&Table> {
        let predefined = super::crm_docs::table_name(etid).is_some();
        if etid > 4 && !predefined && self.type_for_etid(etid).is_none() {
            return None;
        }
        self.tables.get(&Self::table_name_for(etid))
    }

    pub(crate) fn value(&self, t: &Table, id: u64, f: &FieldDef) -> Val {
        generate::value(self, t, id, f)
    }
}

/// `EXTRA` of a directory item: `{SEMANTICS, COLOR}` for stages and lead statuses (JSON text).
fn status_extra(sem: Option<&str>, color: &str) -> Val {
    let Some(sem) = sem else {
        return Val::Null;
    };
    let name = match sem {
        "S" => "success",
        "F" => "failure",
        _ => "process",
    };
    Val::Str(serde_json::json!({"SEMANTICS": name, "COLOR": color}).to_string())
}

/// A field with the title `*.fields` gives it.
fn titled(code: &str, kind: Kind, genr: Gen, title: &str) -> FieldDef {
    FieldDef {
        title: title.to_string(),
        ..plain(code, kind, genr)
    }
}

/// `user.get` fields; titles as `user.fields` gives them (EN user-fields.md).
fn user_fields() -> Vec<FieldDef> {
    let empty = || Gen::Const(Val::Str(String::new()));
    vec![
        titled("ID", Kind::Int, Gen::Id, "ID"),
        titled("ACTIVE", Kind::JsonBool, Gen::YesNo(90), "Activity"),
        titled("NAME", Kind::Str, Gen::FirstName, "First Name"),
        titled(
            "LAST_NAME",
            Kind::Str,
            Gen::Word(&["Иванова", "Petrov", "O'Brien", "Smith"], 0),
            "Last Name",
        ),
        titled("SECOND_NAME", Kind::Str, empty(), "Middle Name"),
        titled("EMAIL", Kind::Str, Gen::UserEmail, "E-Mail"),
        titled("LAST_LOGIN", Kind::DateTime, Gen::Modified, "Last Login"),
        titled(
            "DATE_REGISTER",
            Kind::Date,
            Gen::RegDate,
            "Registration Date",
        ),
        titled("TIME_ZONE", Kind::Str, empty(), "TIME_ZONE"),
        titled("IS_ONLINE", Kind::YesNo, Gen::YesNo(30), "IS_ONLINE"),
        titled("TIMESTAMP_X", Kind::OrmObject, Gen::Modified, "TIMESTAMP_X"),
        titled(
            "LAST_ACTIVITY_DATE",
            Kind::OrmObject,
            Gen::Modified,
            "LAST_ACTIVITY_DATE",
        ),
        titled(
            "PERSONAL_GENDER",
            Kind::Str,
            Gen::Word(&["M", "F", ""], 0),
            "Gender",
        ),
        titled("PERSONAL_WWW", Kind::Str, empty(), "Homepage"),
        titled("PERSONAL_BIRTHDAY", Kind::Date, Gen::Birthday, "Birthday"),
        titled("PERSONAL_MOBILE", Kind::Str, empty(), "Personal Mobile"),
        titled(
            "PERSONAL_CITY",
            Kind::Str,
            Gen::Word(&["Москва", "Berlin", ""], 0),
            "City of Residence",
        ),
        titled("WORK_PHONE", Kind::Str, empty(), "Company Phone"),
        titled(
            "WORK_POSITION",
            Kind::Str,
            Gen::Word(&["Менеджер", "Developer", "CEO"], 0),
            "Position",
        ),
        titled(
            "UF_EMPLOYMENT_DATE",
            Kind::Date,
            Gen::Birthday,
            "Employment Date",
        ),
        titled(
            "UF_DEPARTMENT",
            Kind::Int,
            Gen::UserDepartments,
            "Departments",
        )
        .multi(),
        titled(
            "USER_TYPE",
            Kind::Str,
            Gen::Const(Val::Str("employee".into())),
            "USER_TYPE",
        ),
    ]
}

/// `department.get` fields; titles as `department.fields` gives them (EN department-fields.md).
fn department_fields() -> Vec<FieldDef> {
    vec![
        titled("ID", Kind::Int, Gen::Id, "ID"),
        titled("NAME", Kind::Str, Gen::DeptName, "Department Name"),
        titled(
            "SORT",
            Kind::Int,
            Gen::Const(Val::Int(500)),
            "Sorting Order",
        ),
        titled("PARENT", Kind::Int, Gen::DeptParent, "Parent Department"),
        titled("UF_HEAD", Kind::Int, Gen::IntRange(1, 3, 50), "Manager"),
    ]
}

/// `crm.activity.list` fields with the types and titles of `crm.activity.fields`
/// (EN crm-activity-fields.md).
fn activity_fields() -> Vec<FieldDef> {
    let int = |code: &str, api: &str, genr: Gen, title: &str| fd(code, api, Kind::Int, genr, title);
    let time =
        |code: &str, genr: Gen, title: &str| fd(code, "datetime", Kind::DateTime, genr, title);
    vec![
        int("ID", "integer", Gen::Id, "ID").ro(),
        int("OWNER_ID", "integer", Gen::Parent(2), "Owner ID").immutable(),
        int(
            "OWNER_TYPE_ID",
            "crm_enum_ownertype",
            Gen::Const(Val::Int(2)),
            "Owner Type",
        )
        .immutable(),
        int(
            "TYPE_ID",
            "crm_enum_activitytype",
            Gen::IntRange(1, 4, 0),
            "Type",
        )
        .req()
        .immutable(),
        fd(
            "PROVIDER_ID",
            "string",
            Kind::Str,
            Gen::Word(
                &["CRM_MEETING", "VOXIMPLANT_CALL", "CRM_EMAIL", "CRM_TODO"],
                0,
            ),
            "Provider ID",
        ),
        fd(
            "PROVIDER_TYPE_ID",
            "string",
            Kind::Str,
            Gen::Word(&["MEETING", "CALL", "EMAIL", "TODO"], 0),
            "Provider Type",
        ),
        fd("SUBJECT", "string", Kind::Str, Gen::Phrase(0), "Subject").req(),
        time("CREATED", Gen::Created, "Creation Date").ro(),
        time("LAST_UPDATED", Gen::Modified, "Last Updated").ro(),
        time("START_TIME", Gen::Moved, "Start"),
        time("END_TIME", Gen::Moved, "Deadline"),
        time("DEADLINE", Gen::Moved, "Due Date"),
        fd(
            "COMPLETED",
            "char",
            Kind::YesNo,
            Gen::YesNo(60),
            "Completed",
        ),
        int(
            "STATUS",
            "crm_enum_activitystatus",
            Gen::IntRange(1, 3, 0),
            "Status",
        ),
        int("RESPONSIBLE_ID", "user", Gen::User, "Responsible").req(),
        int(
            "PRIORITY",
            "crm_enum_activitypriority",
            Gen::IntRange(1, 3, 0),
            "Priority",
        ),
        fd(
            "DESCRIPTION",
            "string",
            Kind::Str,
            Gen::Phrase(30),
            "Description",
        ),
        int(
            "DESCRIPTION_TYPE",
            "crm_enum_contenttype",
            Gen::Const(Val::Int(1)),
            "Description Type",
        ),
        int(
            "DIRECTION",
            "crm_enum_activitydirection",
            Gen::IntRange(1, 2, 0),
            "Direction",
        ),
        int("AUTHOR_ID", "user", Gen::User, "Created By").ro(),
        int("EDITOR_ID", "user", Gen::User, "Edited By").ro(),
        // PHP arrays: `[]` when empty, an object otherwise.
        fd(
            "SETTINGS",
            "object",
            Kind::Json,
            Gen::Word(
                &[
                    "[]",
                    r#"{"ADDRESS":"Москва, ул. Тверская, 1","IS_PERIOD":"N"}"#,
                ],
                0,
            ),
            "Settings",
        ),
        fd(
            "PROVIDER_PARAMS",
            "object",
            Kind::Json,
            Gen::Word(
                &[
                    "[]",
                    r#"{"recordUrl":"https://example.com/call/1.mp3","duration":61}"#,
                ],
                0,
            ),
            "Provider Parameters",
        ),
    ]
}

/// `crm.status.list` fields with the types and titles of `crm.status.fields`
/// (EN crm-status-fields.md).
fn status_fields() -> Vec<FieldDef> {
    let text = |code: &str, api: &str, title: &str| fd(code, api, Kind::Str, Gen::Null, title);
    vec![
        fd("ID", "integer", Kind::Int, Gen::Null, "ID").ro(),
        text("ENTITY_ID", "string", "Entity ID").req().immutable(),
        text("STATUS_ID", "string", "Status").req().immutable(),
        text("NAME", "string", "Name").req(),
        text("NAME_INIT", "string", "Default Name").ro(),
        fd("SORT", "integer", Kind::Int, Gen::Null, "Sorting"),
        fd("SYSTEM", "char", Kind::YesNo, Gen::Null, "System").ro(),
        fd(
            "CATEGORY_ID",
            "integer",
            Kind::Int,
            Gen::Null,
            "CATEGORY_ID",
        )
        .immutable(),
        text("COLOR", "string", "COLOR"),
        // `char` in the docs, but a letter (S, F) or empty, not a Y/N flag.
        text("SEMANTICS", "char", "SEMANTICS").immutable(),
        // Internal P/S/F marker used for stage semantics; not an API column.
        plain("_SEMANTIC", Kind::Str, Gen::Null),
        // `{SEMANTICS, COLOR}` for stage-like directories, absent for the others.
        fd(
            "EXTRA",
            "crm_status_extra",
            Kind::Json,
            Gen::Null,
            "Additional Fields",
        ),
    ]
}

/// `crm.category.list` fields (controller API: camelCase names, `upperName` columns) with the
/// types and titles of `crm.category.fields` (EN crm-category-fields.md).
fn category_fields() -> Vec<FieldDef> {
    let f = |code: &str, api: &str, kind: Kind| fd(code, api, kind, Gen::Null, code);
    vec![
        f("ID", "integer", Kind::Int).ro(),
        f("ENTITY_TYPE_ID", "integer", Kind::Int).req().ro(),
        f("NAME", "string", Kind::Str),
        f("SORT", "integer", Kind::Int),
        f("IS_DEFAULT", "boolean", Kind::YesNo).ro(),
        f("ORIGIN_ID", "string", Kind::Str),
        f("ORIGINATOR_ID", "string", Kind::Str),
    ]
}

/// `crm.currency.list` fields with the types and titles of `crm.currency.fields` (EN
/// crm-currency-fields.md: `int`, not `integer`).
fn currency_fields() -> Vec<FieldDef> {
    let f = |code: &str, api: &str, kind: Kind, title: &str| fd(code, api, kind, Gen::Null, title);
    vec![
        f("CURRENCY", "string", Kind::Str, "Currency"),
        f("AMOUNT_CNT", "int", Kind::Int, "Face value"),
        f("AMOUNT", "double", Kind::Amount, "Exchange rate"),
        f("SORT", "int", Kind::Int, "Sorting"),
        f("BASE", "char", Kind::YesNo, "Base currency").ro(),
        f("FULL_NAME", "string", Kind::Str, "Name").ro(),
        f("LID", "string", Kind::Str, "Website").ro(),
        f(
            "FORMAT_STRING",
            "string",
            Kind::Str,
            "Currency output format string",
        )
        .ro(),
        f("DECIMALS", "int", Kind::Int, "Number of decimal places").ro(),
        f("DATE_UPDATE", "datetime", Kind::DateTime, "Date modified").ro(),
    ]
}
